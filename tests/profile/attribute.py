#!/usr/bin/env python3
"""Where the machine's instructions went: reads a `tbprof` profile (one line a
translation block: address, instructions executed, instructions in the block,
the first instruction's bytes) and charges each block to the binary whose code
has those bytes at that address (the domains' kernels share addresses), then
to the function around it.

    python3 tests/profile/attribute.py PROFILE [--base BASE] [--per N] [--top K] NAME=ELF...

--base subtracts a second profile (the same machine doing less: what is left
is the work in between); --per divides by a count (requests, calls);
--blocks TEXT lists, for the functions whose name contains TEXT, each block's
address, instructions and executions (to read against `objdump -d`). See
BENCHMARKS.md, "Profiling a benchmark".
"""
import argparse
import bisect
import collections
import struct
import subprocess


def load_elf(path):
    """(bytes, loadable segments, sorted code symbols) of an ELF64 file."""
    data = open(path, 'rb').read()
    (phoff,) = struct.unpack_from('<Q', data, 0x20)
    phentsize, phnum = struct.unpack_from('<HH', data, 0x36)
    segments = []
    for index in range(phnum):
        kind, _, offset, vaddr, _, size = struct.unpack_from('<IIQQQQ', data, phoff + index * phentsize)
        if kind == 1:
            segments.append((vaddr, offset, size))
    listing = subprocess.run(['nm', '-n', '-C', '--defined-only', path], capture_output=True, text=True, check=True).stdout
    symbols = []
    for line in listing.splitlines():
        parts = line.split(' ', 2)
        if len(parts) == 3 and parts[1] in 'tTwW':
            symbols.append((int(parts[0], 16), parts[2]))
    symbols.sort()
    return data, segments, symbols, [address for address, _ in symbols]


def code_at(elf, vaddr, length):
    data, segments, _, _ = elf
    for base, offset, size in segments:
        if base <= vaddr < base + size:
            return data[offset + vaddr - base:offset + vaddr - base + length]
    return None


def function_at(elf, vaddr):
    _, _, symbols, addresses = elf
    index = bisect.bisect_right(addresses, vaddr) - 1
    return symbols[index][1] if index >= 0 else '?'


def charge(profile, elves, blocks=None):
    """Instructions per (binary, function); and per block of the functions
    whose name contains `blocks`, into a second counter."""
    by_function = collections.Counter()
    by_block = collections.Counter()
    sizes = {}
    names = {}
    for line in open(profile):
        if line.startswith('#'):
            continue
        vaddr, count, _, code = line.split()
        vaddr, count, code = int(vaddr, 16), int(count), bytes.fromhex(code)
        owner = next((name for name, elf in elves.items() if code_at(elf, vaddr, len(code)) == code), '?')
        key = (owner, vaddr)
        if key not in names:
            names[key] = function_at(elves[owner], vaddr) if owner != '?' else '?'
        by_function[(owner, names[key])] += count
        if blocks and blocks in names[key]:
            by_block[(owner, names[key], vaddr)] += count
            sizes[(owner, names[key], vaddr)] = int(line.split()[2])
    return by_function, by_block, sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('profile')
    parser.add_argument('binaries', nargs='+', metavar='NAME=ELF')
    parser.add_argument('--base', help='a profile to subtract')
    parser.add_argument('--per', type=float, default=1.0, help='divide every figure by this')
    parser.add_argument('--top', type=int, default=40)
    parser.add_argument('--blocks', metavar='TEXT', help='list the blocks of the functions whose name contains TEXT')
    arguments = parser.parse_args()
    elves = {}
    for binary in arguments.binaries:
        name, _, path = binary.partition('=')
        elves[name] = load_elf(path)
    counts, blocks, sizes = charge(arguments.profile, elves, arguments.blocks)
    if arguments.base:
        base_counts, base_blocks, _ = charge(arguments.base, elves, arguments.blocks)
        counts.subtract(base_counts)
        blocks.subtract(base_blocks)
    total = sum(counts.values())
    print(f'{total / arguments.per:12.1f}  in all')
    by_binary = collections.Counter()
    for (owner, _), count in counts.items():
        by_binary[owner] += count
    for owner, count in by_binary.most_common():
        print(f'{count / arguments.per:12.1f}  {owner}')
    print()
    for (owner, function), count in counts.most_common(arguments.top):
        print(f'{count / arguments.per:12.1f}  {owner:8s} {function[:140]}')
    if arguments.blocks:
        print()
        for key in sorted(blocks):
            count = blocks[key] / arguments.per
            if abs(count) >= 0.5:
                owner, function, vaddr = key
                print(f'{vaddr:x} {count:10.1f} instructions {count / sizes[key]:8.2f} runs  {owner} {function[:80]}')


if __name__ == '__main__':
    main()
