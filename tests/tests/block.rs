//! Split block devices through an isolated driver domain (issue 9): the
//! driver domain (driver_t, given QEMU's virtio-blk at 00:03.0) drives the
//! disk with virtio-drivers and serves blkback; a banking guest's blkfront
//! writes a pattern over its extent, flushes, reads it back; after QEMU
//! exits the test finds the pattern in the image file at the extent's
//! offset and nothing changed outside it. Beside it, untrusted domains
//! are refused the device and banking's grants; a read-only extent refuses
//! writes.

use std::path::PathBuf;
use std::time::Duration;

use xen_tests::machine::{DomainConfig, Machine};
use xen_tests::running::Running;
use xen_tests::{workspace_root, Outcome};

/// Sectors in the test disk (8 MiB).
const DISK_SECTORS: u64 = 16384;
const SECTOR: usize = 512;

/// Sector `sector` of the pattern blk-pattern writes (frontends/probe/src/blk.rs).
fn pattern(sector: u64) -> [u8; SECTOR] {
    let mut bytes = [0u8; SECTOR];
    bytes[..8].copy_from_slice(&sector.to_le_bytes());
    bytes[8..16].copy_from_slice(b"blkpat01");
    for (index, byte) in bytes.iter_mut().enumerate().skip(16) {
        *byte = (sector as u8).wrapping_add(index as u8);
    }
    bytes
}

/// A zeroed 8 MiB disk image in target/test-disks.
fn disk(name: &str) -> PathBuf {
    let directory = workspace_root().join("target").join("test-disks");
    std::fs::create_dir_all(&directory).expect("disk directory");
    let path = directory.join(format!("{name}-{}.img", std::process::id()));
    std::fs::write(&path, vec![0u8; DISK_SECTORS as usize * SECTOR]).expect("disk image");
    path
}

/// The machine's driver domain (d2 after the agent).
fn driver(devices: u32) -> DomainConfig {
    DomainConfig {
        kernel: "driver".into(),
        memory_mib: 16,
        ..DomainConfig::probe("driver", &format!("exit-after={devices}"))
    }
    .label("driver_t")
    .pci(&["00:03.0"])
}

/// Checks that the image holds the pattern over `start..start + count`
/// (virtual sector 0 at `start`) and `outside` (zero or the pattern) elsewhere.
fn check_image(image: &[u8], extents: &[(u64, u64)]) {
    let mut wrong_inside = 0;
    let mut changed_outside = 0;
    for physical in 0..DISK_SECTORS {
        let bytes = &image[physical as usize * SECTOR..(physical as usize + 1) * SECTOR];
        match extents
            .iter()
            .find(|(start, count)| (*start..start + count).contains(&physical))
        {
            Some((start, _)) => wrong_inside += usize::from(bytes != pattern(physical - start)),
            None => changed_outside += usize::from(bytes.iter().any(|byte| *byte != 0)),
        }
    }
    assert_eq!(
        wrong_inside, 0,
        "sectors of the extents without the pattern"
    );
    assert_eq!(changed_outside, 0, "sectors outside the extents changed");
}

#[test]
fn banking_writes_its_extent_through_the_driver_domain_and_nothing_else_changes() {
    let image = disk("banking");
    let boot = Machine::new("on_idle=poweroff")
        .virtio_disk(&image)
        .domain(DomainConfig::agent(
            "devices=vbd:3:2:51712:2048+4096:w until=alone",
        ))
        .domain(driver(1))
        .domain(DomainConfig::probe("banking", "action=blk-pattern").label("banking_t"))
        .domain(DomainConfig::probe("thief", "action=pci-steal"))
        .domain(DomainConfig::probe("snoop", "action=snoop victim=3 ref=9"))
        .boot(Duration::from_secs(240));
    for line in boot
        .log
        .lines()
        .filter(|line| line.contains("driver") || line.contains("blk") || line.contains("pci") || line.contains("snoop") || line.contains("avc"))
    {
        eprintln!("{line}");
    }
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("driver: virtio-blk ready: 16384 sectors")
        .expect_log("blkback: vbd d3/51712: extent 2048+4096 (read-write), InitWait")
        .expect_log("blkback: vbd d3/51712: connected")
        .expect_log("blk-pattern: disk of 4096 sectors, read-write")
        .expect_log("blk-pattern: wrote 4096 sectors in 47 requests (0 errors), flushed (0 errors), read back 4096 sectors (0 errors): 0 mismatches")
        .expect_log("blk-pattern: ok")
        // Persistent grants: taken up by both ends, every kept mapping
        // unmapped by the backend before the frontend ends its grants.
        .expect_log("vbd 51712: persistent grants in use")
        .expect_log("persistent grants), connection 1")
        .expect_log(" still mapped, ring revoked")
        .expect_log("kept grants unmapped")
        .expect_log(" refused), 0 still kept")
        .expect_no_log("STILL MAPPED")
        .expect_log("pci-steal: 5 of 5 refused")
        .expect_log("snoop: map: status GNTST_permission_denied (rw d3 ref 9)")
        .expect_log("avc:  denied  { map_read map_write } for domid=5 scontext=system_u:system_r:untrusted_t tcontext=system_u:system_r:banking_t tclass=grant")
        .expect_log("snoop: every attempt refused")
        .expect_log("blkback: 1 devices served and gone")
        .expect_no_log("UNEXPECTED")
        .expect_no_log("crashed")
        .expect_no_log("LEAK");
    // blkfront hands out each request's pages as an ascending run of its
    // pool, which the runtime allocated one after the other: the driver
    // joins neighbouring pages into one DMA buffer (and the image check
    // below proves the data still landed where it belongs).
    let joined = joined_segments(&boot.log);
    assert!(joined > 0, "no segment was joined to its neighbour: {joined}");
    let bytes = std::fs::read(&image).expect("read the image");
    check_image(&bytes, &[(2048, 4096)]);
    let _ = std::fs::remove_file(image);
}

/// The count in blkback's exit line "... buffers by DMA (N segments joined
/// to the one before) ...".
fn joined_segments(log: &str) -> u64 {
    let line = log
        .lines()
        .find(|line| line.contains(" buffers by DMA ("))
        .expect("blkback's exit line");
    let after = &line[line.find(" buffers by DMA (").expect("found") + " buffers by DMA (".len()..];
    let count = after.split(' ').next().unwrap_or_default();
    count.parse().unwrap_or_else(|_| panic!("no count in {line:?}"))
}

#[test]
fn a_read_only_extent_refuses_writes_and_reads_what_is_there() {
    let image = disk("readonly");
    // The extent holds the pattern before the machine starts.
    let mut bytes = std::fs::read(&image).expect("read the image");
    for sector in 0..64u64 {
        let at = (8192 + sector) as usize * SECTOR;
        bytes[at..at + SECTOR].copy_from_slice(&pattern(sector));
    }
    std::fs::write(&image, &bytes).expect("write the image");
    let boot = Machine::new("on_idle=poweroff")
        .virtio_disk(&image)
        .domain(DomainConfig::agent(
            "devices=vbd:3:2:51712:8192+64:r until=alone",
        ))
        .domain(driver(1))
        // Grants per request here (the backend offers persistent ones).
        .domain(DomainConfig::probe("reader", "action=blk-pattern check=1 persistent=0").label("banking_t"))
        .boot(Duration::from_secs(180));
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("vbd 51712: persistent grants not in use (offered, not asked for)")
        .expect_log("per-request grants), connection 1")
        .expect_log(" refused), 0 still kept")
        .expect_log("blkback: vbd d3/51712: extent 8192+64 (read-only), InitWait")
        .expect_log("blk-pattern: disk of 64 sectors, read-only")
        .expect_log("blk-pattern: write to the read-only disk refused with status -1")
        .expect_log("blk-pattern: read 64 sectors of the read-only disk in 1 requests (0 errors): 0 mismatches")
        .expect_log("blk-pattern: ok")
        .expect_no_log("UNEXPECTED")
        .expect_no_log("crashed");
    let after = std::fs::read(&image).expect("read the image");
    check_image(&after, &[(8192, 64)]);
    let _ = std::fs::remove_file(image);
}

#[test]
fn a_hostile_frontend_is_refused_or_disconnected_alone_and_writes_nothing() {
    let image = disk("hostile");
    let boot = Machine::new("on_idle=poweroff")
        .virtio_disk(&image)
        .domain(DomainConfig::agent(
            "devices=vbd:3:2:51712:2048+1024:w,vbd:4:2:51712:1024+512:w until=alone",
        ))
        .domain(driver(2))
        .domain(DomainConfig::probe("banking", "action=blk-pattern").label("banking_t"))
        .domain(DomainConfig::probe("hostile", "action=blk-hostile"))
        .boot(Duration::from_secs(120));
    for line in boot.log.lines().filter(|line| line.contains("blk") || line.contains("driver")) {
        eprintln!("{line}");
    }
    boot.expect_outcome(Outcome::PoweredOff);
    // Every bad request answered with an error, and the backend says why.
    for case in [
        "nr_segments 0",
        "nr_segments 12",
        "first_sect > last_sect",
        "last_sect 8 (past the page)",
        "write across the end of the extent",
        "write wholly past the end",
        "write at a sector number that overflows",
        "write from a grant ref never granted",
    ] {
        boot.expect_log(&format!("blk-hostile: {case}: answered with status -1"));
    }
    for id in 1..=8 {
        boot.expect_log(&format!("blkback: vbd d4/51712: request id {id} (operation 1) refused with status -1"));
    }
    boot.expect_log("request rewritten")
        .expect_log("blk-hostile: producer index jumped by 1000: the backend disconnected us (Closing)")
        .expect_log("blkback: vbd d4/51712: the frontend broke its ring")
        .expect_log("blkback: vbd d4/51712: connected (ring ref 8, port ")
        .expect_log("), connection 2")
        .expect_log("blk-hostile: reconnected: read 8 sectors of its extent: status 0, all zero")
        .expect_log("blk-hostile: producer index rewound by 3: the backend disconnected us (Closing)")
        .expect_log("blk-hostile: ok")
        // The well-behaved frontend beside it finished its pattern.
        .expect_log("blk-pattern: wrote 1024 sectors in 12 requests (0 errors), flushed (0 errors), read back 1024 sectors (0 errors): 0 mismatches")
        .expect_log("blk-pattern: ok")
        .expect_log("blkback: 2 devices served and gone")
        .expect_log(" calls (1 refused), 0 still kept")
        .expect_no_log("UNEXPECTED")
        .expect_no_log("crashed");
    // Nothing but the pattern in banking's extent; the hostile one's
    // extent and everything else still zero.
    let bytes = std::fs::read(&image).expect("read the image");
    check_image(&bytes, &[(2048, 1024)]);
    let _ = std::fs::remove_file(image);
}

#[test]
fn a_frontend_closes_reconnects_and_its_io_works_again() {
    let image = disk("reconnect");
    let boot = Machine::new("on_idle=poweroff")
        .virtio_disk(&image)
        .domain(DomainConfig::agent("devices=vbd:3:2:51712:4096+512:w until=alone"))
        .domain(driver(1))
        .domain(DomainConfig::probe("banking", "action=blk-pattern rounds=3").label("banking_t"))
        .boot(Duration::from_secs(120));
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("), connection 1")
        .expect_log("), connection 3")
        .expect_log("blk-pattern: round 3 of 3: the backend is back (InitWait)")
        .expect_no_log("STILL MAPPED")
        .expect_log(" refused), 0 still kept")
        .expect_log("blk-pattern: after reconnecting, read 512 sectors (0 errors): 0 mismatches with what the last connection wrote")
        .expect_log("blk-pattern: ok")
        .expect_log("blkback: 1 devices served and gone")
        .expect_no_log("UNEXPECTED")
        .expect_no_log("crashed");
    let bytes = std::fs::read(&image).expect("read the image");
    check_image(&bytes, &[(4096, 512)]);
    let _ = std::fs::remove_file(image);
}

/// `cpu_time_ns` of domain `name` in `xl list -l` output (a JSON list of
/// flat objects).
fn cpu_time_ns(json: &str, name: &str) -> u64 {
    let object = json
        .split('}')
        .find(|object| object.contains(&format!("\"name\": \"{name}\"")))
        .unwrap_or_else(|| panic!("no {name} in {json}"));
    let key = "\"cpu_time_ns\": ";
    let field = object.find(key).unwrap_or_else(|| panic!("no cpu_time_ns in {object}")) + key.len();
    object[field..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().expect("cpu_time_ns")
}

#[test]
fn an_idle_driver_domain_is_never_woken() {
    // Under -icount sleep=off a pending timer is reached at once when the
    // machine idles, so a driver that polled or slept with a timeout would
    // run again between the two looks; one that only blocks on events
    // does not run at all.
    let image = disk("idle");
    let machine = Machine::new("loglvl=info")
        .virtio_disk(&image)
        .domain(DomainConfig::agent("devices=vbd:3:2:51712:0+256:w").memory(64))
        .domain(
            DomainConfig { kernel: "driver".into(), memory_mib: 16, ..DomainConfig::probe("driver", "") }
                .label("driver_t")
                .pci(&["00:03.0"]),
        )
        // blk-bench, not blk-pattern: its waits for the disk have no
        // deadline. Under sleep=off an idle machine jumps straight to any
        // armed deadline, so a timed wait for real (host-paced) disk I/O
        // would time out whenever the host is slow.
        .domain(DomainConfig::probe("banking", "action=blk-bench count=2").label("banking_t"));
    let mut extra: Vec<&str> = machine.qemu.iter().map(String::as_str).collect();
    extra.extend(["-icount", "shift=0,sleep=off"]);
    let running = Running::start_with(&machine, &extra);
    let step = Duration::from_secs(120);
    running.wait_for("blk-bench: ok", step);
    running.wait_for("blkback: vbd d3/51712: removed by the toolstack", step);
    running.wait_for("operator: channel ready", step);
    let first = running.xl_ok(&["list", "-l"]);
    std::thread::sleep(Duration::from_secs(3));
    let between = running.xl_ok(&["list", "-l"]);
    std::thread::sleep(Duration::from_secs(3));
    let last = running.xl_ok(&["list", "-l"]);
    let driver: Vec<u64> = [&first, &between, &last].iter().map(|json| cpu_time_ns(json, "driver")).collect();
    let control: Vec<u64> = [&first, &between, &last].iter().map(|json| cpu_time_ns(json, "control")).collect();
    eprintln!("driver cpu_time_ns {driver:?}; control (serving xl) {control:?}");
    assert!(driver[0] > 0, "the driver domain never ran: {first}");
    assert!(control[2] > control[0], "the clock did not move between the looks: {control:?}");
    assert_eq!(driver[0], driver[2], "the idle driver domain ran between the looks: {driver:?}\n{}", running.tail(20));
    drop(running);
    let _ = std::fs::remove_file(image);
}
