//! Tests of the xl.cfg parser: good files, the syntax, and every error with
//! its line and column.

use super::*;

fn parse_text(text: &str) -> Result<DomainConfig, ConfigError> {
    parse(text, Path::new("/launch/10-guest.cfg"))
}

/// The error's `line:column: message`.
fn error_of(text: &str) -> String {
    let error = parse_text(text).unwrap_err();
    assert_eq!(error.path, Path::new("/launch/10-guest.cfg"));
    let position = error
        .position
        .map_or(String::new(), |position| format!("{position}: "));
    format!("{position}{}", error.message)
}

const MINIMAL: &str = "name = \"guest\"\nkernel = \"guest.elf\"\nmemory = 64\n";

#[test]
fn a_full_file_parses() {
    let text = r#"
# The banking domain.
name = "banking"          # trailing comment
type = "pv"
kernel = 'kernels/banking.elf';
memory = 128
vcpus = 1
seclabel = "system_u:system_r:banking_t"
extra = "console=hvc0 loglevel=3"
control_domain = 0
driver_domain = 1
"#;
    let config = parse_text(text).unwrap();
    assert_eq!(config.name, "banking");
    assert_eq!(config.kernel, Path::new("/launch/kernels/banking.elf"));
    assert_eq!(config.memory_mib, 128);
    assert_eq!(
        config.seclabel.as_deref(),
        Some("system_u:system_r:banking_t")
    );
    assert_eq!(config.command_line, "console=hvc0 loglevel=3");
    assert_eq!(config.vcpus, 1);
    assert!(!config.control_domain && config.driver_domain);
    assert_eq!(config.source, Path::new("/launch/10-guest.cfg"));
}

#[test]
fn defaults_and_synonyms() {
    let config = parse_text(MINIMAL).unwrap();
    assert_eq!(
        (config.seclabel, config.command_line.as_str(), config.vcpus),
        (None, "", 1)
    );
    assert!(!config.control_domain && !config.driver_domain);
    let config = parse_text(&format!("{MINIMAL}cmdline = 'quiet'\ncontrol_domain = 1")).unwrap();
    assert_eq!(config.command_line, "quiet");
    assert!(config.control_domain);
}

#[test]
fn absolute_kernel_paths_stay_absolute() {
    let config = parse_text("name='a'\nkernel='/boot/a.elf'\nmemory=0x10").unwrap();
    assert_eq!(
        (config.kernel.as_path(), config.memory_mib),
        (Path::new("/boot/a.elf"), 16)
    );
}

#[test]
fn display_is_valid_xl_cfg_that_parses_back() {
    let text =
        format!("{MINIMAL}seclabel='a_t'\nextra = \"say \\\"hi\\\"\\tnow\"\ndriver_domain=1\n");
    let config = parse_text(&text).unwrap();
    let printed = config.to_string();
    assert!(
        printed.contains("kernel = \"/launch/guest.elf\""),
        "{printed}"
    );
    assert_eq!(parse_text(&printed).unwrap(), config);
}

#[test]
fn syntax_accepts_lists_semicolons_and_escapes() {
    let settings = syntax::parse(
        "disk = [ 'phy:/dev/a,xvda,w',\n  \"b\", # comment\n 7, ]\na = 1; b = 'x'\n\n\r\nc = \"\\\\ \\n\"",
    )
    .unwrap();
    let keys: Vec<_> = settings
        .iter()
        .map(|setting| setting.key.as_str())
        .collect();
    assert_eq!(keys, ["disk", "a", "b", "c"]);
    let ValueKind::List(items) = &settings[0].value.kind else {
        panic!("a list")
    };
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[0].kind,
        ValueKind::String("phy:/dev/a,xvda,w".to_string())
    );
    assert_eq!(items[2].kind, ValueKind::Integer(7));
    assert_eq!(items[2].position, Position { line: 3, column: 2 });
    assert_eq!(settings[1].position, Position { line: 4, column: 1 });
    assert_eq!(settings[2].position, Position { line: 4, column: 8 });
    assert_eq!(
        settings[3].value.kind,
        ValueKind::String("\\ \n".to_string())
    );
    assert_eq!(
        syntax::parse("empty = []").unwrap()[0].value.kind,
        ValueKind::List(vec![])
    );
    // Single quotes take backslashes literally.
    assert_eq!(
        syntax::parse(r"a = 'c:\x'").unwrap()[0].value.kind,
        ValueKind::String(r"c:\x".to_string())
    );
}

#[test]
fn syntax_errors_name_line_and_column() {
    let cases = [
        (
            "name \"x\"",
            "1:6: expected '=' after key 'name', found '\"'",
        ),
        (
            "\n  = 3",
            "2:3: expected a key (a name like 'memory'), found '='",
        ),
        (
            "memory = ",
            "1:10: expected a value (a quoted string, an integer or a list), found end of file",
        ),
        (
            "memory =\n64",
            "1:9: expected a value (a quoted string, an integer or a list), found end of line",
        ),
        (
            "name = \"guest",
            "1:8: unterminated string: expected a closing \" on the same line",
        ),
        (
            "name = 'a\nb'",
            "1:8: unterminated string: expected a closing ' on the same line",
        ),
        (
            "memory = 64 128",
            "1:13: expected end of line or ';' after the value of 'memory', found '1'",
        ),
        (
            "memory = 12ab",
            "1:10: expected an integer (decimal or 0x hex), found '12ab'",
        ),
        (
            "memory = 99999999999999999999",
            "1:10: integer '99999999999999999999' is too large",
        ),
        (
            "memory = -1",
            "1:10: expected a value (a quoted string, an integer or a list), found '-'",
        ),
        (
            "name = \"a\\qb\"",
            "1:11: unknown escape '\\q': expected \\\\, \\\", \\', \\n or \\t",
        ),
        (
            "disk = [ 'a' 'b' ]",
            "1:14: expected ',' or ']' in list, found '''",
        ),
        (
            "disk = [ 'a',\n",
            "2:1: expected a string or an integer, found end of file",
        ),
        (
            "disk = [ ['a'] ]",
            "1:10: expected a string or an integer; lists cannot be nested",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error_of(text), expected, "for {text:?}");
    }
}

#[test]
fn meaning_errors_name_line_and_column() {
    let cases = [
        ("foo = 1", "1:1: unknown key 'foo'"),
        (
            "name = 'a'\nname = 'b'",
            "2:1: duplicate key 'name' (first set at line 1)",
        ),
        (
            "extra = 'a'\n cmdline = 'b'",
            "2:2: duplicate key 'cmdline' (a synonym of 'extra', set at line 1)",
        ),
        (
            "name = 5",
            "1:8: expected a quoted string for 'name', found an integer",
        ),
        (
            "name = 'bad name'",
            "1:8: domain name 'bad name' has ' ': expected letters, digits, '_', '.' or '-'",
        ),
        ("name = ''", "1:8: domain name is empty"),
        (
            "memory = '64'",
            "1:10: expected an integer for 'memory', found a string",
        ),
        (
            "memory = [64]",
            "1:10: expected an integer for 'memory', found a list",
        ),
        ("memory = 0", "1:10: 'memory' is 0: expected MiB of RAM"),
        (
            "kernel = ''",
            "1:10: 'kernel' is empty: expected a file path",
        ),
        (
            "vcpus = 2",
            "1:9: vcpus = 2 is not supported: expected 1 (one vCPU per domain for now)",
        ),
        (
            "type = 'hvm'",
            "1:8: type \"hvm\" is not supported: expected \"pv\"",
        ),
        (
            "control_domain = 2",
            "1:18: expected 0 or 1 for 'control_domain', found 2",
        ),
        (
            "driver_domain = 'yes'",
            "1:17: expected an integer for 'driver_domain', found a string",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error_of(text), expected, "for {text:?}");
    }
}

#[test]
fn required_keys_are_required() {
    assert_eq!(
        error_of("kernel = 'k'\nmemory = 1"),
        "missing required key 'name'"
    );
    assert_eq!(
        error_of("name = 'a'\nmemory = 1"),
        "missing required key 'kernel'"
    );
    assert_eq!(
        error_of("name = 'a'\nkernel = 'k'"),
        "missing required key 'memory'"
    );
    assert_eq!(error_of("# nothing\n"), "missing required key 'name'");
}

#[test]
fn errors_display_as_file_line_column() {
    let error = parse_text("foo = 1").unwrap_err();
    assert_eq!(
        error.to_string(),
        "/launch/10-guest.cfg:1:1: unknown key 'foo'"
    );
    let error = parse_text("").unwrap_err();
    assert_eq!(
        error.to_string(),
        "/launch/10-guest.cfg: missing required key 'name'"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    assert_eq!(
        error_of("extra = 'é' x"),
        "1:13: expected end of line or ';' after the value of 'extra', found 'x'"
    );
}

#[test]
fn load_reports_unreadable_files() {
    let error = load(Path::new("/nonexistent/x.cfg")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/x.cfg: cannot read: "),
        "{error}"
    );
}

/// `xl check-config /dev/zero` used to read until memory ran out.
#[test]
#[cfg(target_os = "linux")]
fn load_refuses_an_endless_file_at_the_limit() {
    let error = load(Path::new("/dev/zero")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/dev/zero: cannot read: goes on past the end its metadata gives, more than the limit of 1048576 bytes"
    );
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("latin1.cfg");
    std::fs::write(&path, b"name = 'caf\xe9'\n").unwrap();
    let error = load(&path).unwrap_err().to_string();
    assert!(error.contains("cannot read: not UTF-8 text"), "{error}");
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*") {
        let _ = parse_text(&text);
    }

    #[test]
    fn config_like_text_never_panics(text in "([a-z_]{1,8} ?= ?([0-9x]{1,4}|'[^'\n]{0,6}'|\"[^\"\n]{0,6}\"|\\[[ ,'a0-9\n]{0,8}\\]) ?[;#]?\n?){0,6}") {
        let _ = parse_text(&text);
    }
}

/// The configuration of `MINIMAL` plus `line`.
fn with(line: &str) -> DomainConfig {
    parse_text(&format!("{MINIMAL}{line}\n")).unwrap()
}

/// The error of `MINIMAL` plus `line` (on line 4).
fn error_with(line: &str) -> String {
    error_of(&format!("{MINIMAL}{line}\n"))
}

fn disk(target: &str, vdev: &str, access: Access) -> DiskSpec {
    DiskSpec {
        target: target.to_string(),
        vdev: vdev.to_string(),
        access,
        format: None,
        cdrom: false,
        backend: None,
        backend_type: None,
    }
}

#[test]
fn device_and_action_keys_default_to_none_and_xen_actions() {
    let config = parse_text(MINIMAL).unwrap();
    assert!(config.disks.is_empty() && config.vifs.is_empty() && config.pci.is_empty());
    assert_eq!(
        (config.on_crash, config.on_poweroff, config.on_reboot),
        (
            ExitAction::Destroy,
            ExitAction::Destroy,
            ExitAction::Restart
        )
    );
}

#[test]
fn disk_specs_in_every_form() {
    let raw = |target: &str, vdev: &str, access| DiskSpec {
        format: Some("raw".to_string()),
        ..disk(target, vdev, access)
    };
    let cases = [
        (
            "/dev/vg/guest,,xvda",
            disk("/dev/vg/guest", "xvda", Access::ReadWrite),
        ),
        (
            "/dev/vg/guest,raw,xvda,rw",
            raw("/dev/vg/guest", "xvda", Access::ReadWrite),
        ),
        (
            "format=raw, vdev=xvda, access=rw, target=/dev/vg/guest",
            raw("/dev/vg/guest", "xvda", Access::ReadWrite),
        ),
        (
            "raw:/dev/vg/guest,xvda,w",
            raw("/dev/vg/guest", "xvda", Access::ReadWrite),
        ),
        (
            "phy:/dev/sdb1,xvdb,r",
            raw("/dev/sdb1", "xvdb", Access::ReadOnly),
        ),
        (
            "vdev=xvdc, mode=ro, target=/a,b",
            disk("/a,b", "xvdc", Access::ReadOnly),
        ),
        ("/img, vdev=xvdd", disk("/img", "xvdd", Access::ReadWrite)),
        ("vdev=xvde,/img", disk("/img", "xvde", Access::ReadWrite)),
        ("/img,,d0p1,ro", disk("/img", "d0p1", Access::ReadOnly)),
        ("/img,,sdaa3", disk("/img", "sdaa3", Access::ReadWrite)),
        (
            "/root/cd.iso,,hdc,cdrom",
            DiskSpec {
                cdrom: true,
                ..disk("/root/cd.iso", "hdc", Access::ReadOnly)
            },
        ),
        (
            "raw:/root/cd.iso,hdc:cdrom,ro",
            DiskSpec {
                cdrom: true,
                ..raw("/root/cd.iso", "hdc", Access::ReadOnly)
            },
        ),
        (
            ",,hdc,devtype=cdrom",
            DiskSpec {
                cdrom: true,
                ..disk("", "hdc", Access::ReadOnly)
            },
        ),
        (
            "vdev=xvda, backend=driver, backendtype=phy, target=/dev/vda",
            DiskSpec {
                backend: Some("driver".to_string()),
                backend_type: Some("phy".to_string()),
                ..disk("/dev/vda", "xvda", Access::ReadWrite)
            },
        ),
    ];
    for (spec, expected) in cases {
        let config = with(&format!("disk = [ '{spec}' ]"));
        assert_eq!(config.disks, [expected], "for {spec:?}");
    }
    let config = with("disk = [ '/a,,xvda', \"/b,,xvdb,r\",\n  ]");
    assert_eq!(config.disks.len(), 2);
    assert_eq!(with("disk = []").disks, []);
}

#[test]
fn disk_errors_name_the_item_and_what_was_expected() {
    let cases = [
        ("disk = [ '/a' ]", "4:10: disk '/a': no vdev: expected the guest's device name, e.g. 'xvda' or 'vdev=xvda'"),
        ("disk = [ 'vdev=xvda' ]", "4:10: disk 'vdev=xvda': no target: expected the backing device or file, e.g. '/dev/vg/guest,,xvda'"),
        ("disk = [ '/a,,vda' ]", "4:10: disk '/a,,vda': invalid vdev 'vda': expected a name like xvda, hda, sdb or d0p1"),
        ("disk = [ '/a,,xvda1x' ]", "4:10: disk '/a,,xvda1x': invalid vdev 'xvda1x': expected a name like xvda, hda, sdb or d0p1"),
        ("disk = [ '/a,,xvda,rx' ]", "4:10: disk '/a,,xvda,rx': invalid access 'rx': expected r, ro, w or rw"),
        ("disk = [ '/a,vmdk,xvda' ]", "4:10: disk '/a,vmdk,xvda': invalid format 'vmdk': expected raw, qcow, qcow2, vhd, qed, empty"),
        ("disk = [ '/a,,xvda,rw,extra' ]", "4:10: disk '/a,,xvda,rw,extra': too many positional parameters at 'extra': expected at most target, format, vdev, access"),
        ("disk = [ 'vdev=xvda,vdev=xvdb,target=/a' ]", "4:10: disk 'vdev=xvda,vdev=xvdb,target=/a': disk parameter 'vdev' given twice"),
        ("disk = [ '/a,vdev=xvda,target=/b' ]", "4:10: disk '/a,vdev=xvda,target=/b': disk parameter 'target' given twice"),
        ("disk = [ '/a,,xvda,colour=red' ]", "4:10: disk '/a,,xvda,colour=red': unknown disk parameter 'colour': expected target, format, vdev, access, devtype, backend or backendtype"),
        ("disk = [ '/a,,xvda,devtype=floppy' ]", "4:10: disk '/a,,xvda,devtype=floppy': invalid devtype 'floppy': expected disk or cdrom"),
        ("disk = [ '/a,,xvda,backendtype=nbd' ]", "4:10: disk '/a,,xvda,backendtype=nbd': invalid backendtype 'nbd': expected phy, qdisk, tap, standalone"),
        ("disk = [ '/a,,xvda,backend=' ]", "4:10: disk '/a,,xvda,backend=': empty backend: expected a domain name or id"),
        ("disk = [ '/a,,xvda', '/b,,xvda' ]", "4:22: disk '/b,,xvda': vdev xvda is already given at line 4, column 10"),
        ("disk = '/a,,xvda'", "4:8: expected a list of quoted strings for 'disk' (like disk = [ '...' ]), found a string"),
        ("disk = [ 3 ]", "4:10: expected a quoted string in 'disk', found an integer"),
        ("disk = []\ndisk = []", "5:1: duplicate key 'disk' (first set at line 4)"),
    ];
    for (line, expected) in cases {
        assert_eq!(error_with(line), expected, "for {line:?}");
    }
}

#[test]
fn vif_specs() {
    let config = with("vif = [ 'mac=00:16:3e:01:02:0A, bridge=xenbr0, backend=driver', '' ]");
    assert_eq!(
        config.vifs,
        [
            VifSpec {
                mac: Some([0x00, 0x16, 0x3e, 0x01, 0x02, 0x0a]),
                bridge: Some("xenbr0".to_string()),
                backend: Some("driver".to_string()),
            },
            VifSpec::default(),
        ]
    );
    assert_eq!(
        with("vif = [ 'backend=2' ]").vifs[0].backend.as_deref(),
        Some("2")
    );
}

#[test]
fn vif_errors() {
    let cases = [
        ("vif = [ 'mac=00:16:3e:01:02' ]", "4:9: vif 'mac=00:16:3e:01:02': invalid mac '00:16:3e:01:02': expected six hex bytes like 00:16:3e:12:34:56"),
        ("vif = [ 'mac=00:16:3e:01:02:03:04' ]", "4:9: vif 'mac=00:16:3e:01:02:03:04': invalid mac '00:16:3e:01:02:03:04': expected six hex bytes like 00:16:3e:12:34:56"),
        ("vif = [ 'mac=00:16:3g:01:02:03' ]", "4:9: vif 'mac=00:16:3g:01:02:03': invalid mac '00:16:3g:01:02:03': expected six hex bytes like 00:16:3e:12:34:56"),
        ("vif = [ 'mac=01:16:3e:01:02:03' ]", "4:9: vif 'mac=01:16:3e:01:02:03': invalid mac '01:16:3e:01:02:03': a multicast address (first byte odd); expected a unicast one"),
        ("vif = [ 'bridge' ]", "4:9: vif 'bridge': 'bridge' is not KEY=VALUE: expected mac=, bridge= or backend="),
        ("vif = [ 'model=e1000' ]", "4:9: vif 'model=e1000': unknown vif parameter 'model': expected mac, bridge or backend"),
        ("vif = [ 'bridge=a,bridge=b' ]", "4:9: vif 'bridge=a,bridge=b': vif parameter 'bridge' given twice"),
        ("vif = [ 'backend=' ]", "4:9: vif 'backend=': empty backend: expected a name"),
        ("vif = [ 'mac=00:16:3e:00:00:01', 'mac=00:16:3E:00:00:01' ]", "4:34: vif 'mac=00:16:3E:00:00:01': mac 00:16:3e:00:00:01 is already given at line 4, column 9"),
        ("vif = 1", "4:7: expected a list of quoted strings for 'vif' (like vif = [ '...' ]), found an integer"),
    ];
    for (line, expected) in cases {
        assert_eq!(error_with(line), expected, "for {line:?}");
    }
}

#[test]
fn pci_addresses() {
    let config = with("pci = [ '00:03.0', '0001:0a:1f.7' ]");
    assert_eq!(
        config.pci,
        [
            PciAddress {
                segment: 0,
                bus: 0,
                device: 3,
                function: 0
            },
            PciAddress {
                segment: 1,
                bus: 0x0a,
                device: 0x1f,
                function: 7
            },
        ]
    );
    assert_eq!(config.pci[0].to_string(), "0000:00:03.0");
}

#[test]
fn pci_errors() {
    let expected = "expected [DDDD:]BB:DD.F in hex, e.g. '00:03.0'";
    let cases = [
        ("00:03", "no '.' before the function"),
        ("03.0", "wrong number of ':'"),
        ("0:0:0:03.0", "wrong number of ':'"),
        ("00:20.0", "device 0x20 is over 0x1f"),
        ("00:03.8", "function 8 is over 7"),
        ("00:03.", "bad function ''"),
        ("000:03.0", "bad bus '000'"),
        ("0g:03.0", "bad bus '0g'"),
        ("10000:00:03.0", "bad segment '10000'"),
        ("00:+3.0", "bad device '+3'"),
        (
            "00:03.0,permissive=1",
            "options and virtual slots are not supported",
        ),
        ("00:03.0@5", "options and virtual slots are not supported"),
    ];
    for (address, why) in cases {
        assert_eq!(
            error_with(&format!("pci = [ '{address}' ]")),
            format!("4:9: pci '{address}': invalid PCI address '{address}': {why}; {expected}"),
            "for {address:?}"
        );
    }
    assert_eq!(
        error_with("pci = [ '00:03.0', '0000:00:03.0' ]"),
        "4:20: pci '0000:00:03.0': device 0000:00:03.0 is already given at line 4, column 9"
    );
}

#[test]
fn exit_actions() {
    let config = with("on_crash = 'restart'\non_poweroff = \"preserve\"\non_reboot = 'destroy'");
    assert_eq!(
        (config.on_crash, config.on_poweroff, config.on_reboot),
        (
            ExitAction::Restart,
            ExitAction::Preserve,
            ExitAction::Destroy
        )
    );
    assert_eq!(
        error_with("on_crash = 'coredump-restart'"),
        "4:12: on_crash: unsupported action \"coredump-restart\": expected \"destroy\", \"restart\" or \"preserve\""
    );
    assert_eq!(
        error_with("on_poweroff = 1"),
        "4:15: expected a quoted string for 'on_poweroff', found an integer"
    );
    assert_eq!(
        error_with("on_reboot = 'restart'\non_reboot = 'restart'"),
        "5:1: duplicate key 'on_reboot' (first set at line 4)"
    );
}

#[test]
fn display_of_devices_parses_back() {
    let config = with(
        "disk = [ 'raw:/dev/vg/a b,xvda,w', '/iso,,hdc,cdrom', 'vdev=xvdb, backend=driver, target=/x,y' ]\n\
         vif = [ 'mac=00:16:3e:00:00:01,bridge=br0', '' ]\npci = [ '00:03.0' ]\non_crash = 'preserve'",
    );
    let printed = config.to_string();
    assert!(
        printed.contains("disk = [ \"vdev=xvda, access=rw, format=raw, target=/dev/vg/a b\", "),
        "{printed}"
    );
    assert!(printed.contains("pci = [ \"0000:00:03.0\" ]"), "{printed}");
    assert!(
        printed.contains(
            "on_crash = \"preserve\"\non_poweroff = \"destroy\"\non_reboot = \"restart\""
        ),
        "{printed}"
    );
    assert_eq!(parse_text(&printed).unwrap(), config);
}

proptest::proptest! {
    #[test]
    fn arbitrary_device_specs_never_panic(spec in "[ -~]{0,40}") {
        let _ = devices::parse_disk(&spec);
        let _ = devices::parse_vif(&spec);
        let _ = devices::parse_pci(&spec);
    }
}
