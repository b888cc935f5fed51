//! The runtime commands: each connects to the control socket, sends its
//! request (an upload for `create` and `loadpolicy`, a stream for
//! `console`, `dmesg` and `xenstore-ls`) and prints the answer in Xen's
//! shape. Errors name the command and domain and pass the agent's message
//! through (a denial quotes the AVC line).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use control_proto::{CreateSpec, DomainRef, Request, Response};
use toolstack::control::{format, sha256, Client, ClientError};
use toolstack::{config, policy};

use super::Command;

/// Where the machine is and how long to wait for it.
pub(crate) struct Channel {
    /// The control socket.
    pub(crate) socket: PathBuf,
    /// The longest wait for an answer.
    pub(crate) timeout: Duration,
}

impl Channel {
    fn connect(&self) -> Result<Client, String> {
        Client::connect(&self.socket, self.timeout).map_err(|error| error.to_string())
    }
}

/// `what: error`, except that "no machine" needs no prefix.
fn failed(what: &str) -> impl Fn(ClientError) -> String + '_ {
    move |error| match error {
        ClientError::NoMachine { .. } => error.to_string(),
        _ => format!("{what}: {error}"),
    }
}

/// Runs a runtime command.
pub(crate) fn run(channel: &Channel, command: &Command) -> Result<(), String> {
    match command {
        Command::Create { config } => create(channel, config),
        Command::List {
            labels,
            long,
            domains,
        } => list(channel, *labels, *long, domains),
        Command::Destroy { domain } => simple(channel, "destroy", domain, |domain| {
            Request::Destroy { domain }
        }),
        Command::Shutdown { domain } => simple(channel, "shutdown", domain, |domain| {
            Request::Shutdown { domain }
        }),
        Command::Pause { domain } => {
            simple(channel, "pause", domain, |domain| Request::Pause { domain })
        }
        Command::Unpause { domain } => simple(channel, "unpause", domain, |domain| {
            Request::Unpause { domain }
        }),
        Command::Console { domain, raw } => stream(
            channel,
            &format!("console {domain}"),
            &Request::Console {
                domain: DomainRef::parse(domain),
            },
            true,
            *raw,
        ),
        Command::Dmesg => stream(channel, "dmesg", &Request::Dmesg, false, false),
        Command::XenstoreLs { path } => stream(
            channel,
            &format!("xenstore-ls {path}"),
            &Request::StoreLs { path: path.clone() },
            false,
            false,
        ),
        Command::Info => match channel
            .connect()?
            .call(&Request::Info)
            .map_err(failed("info"))?
        {
            Response::Info(info) => {
                print!("{}", format::info(&info));
                Ok(())
            }
            other => Err(unexpected("info", &other)),
        },
        Command::Getenforce => {
            match channel
                .connect()?
                .call(&Request::GetEnforce)
                .map_err(failed("getenforce"))?
            {
                Response::Enforce(mode) => {
                    println!("{}", mode.name());
                    Ok(())
                }
                other => Err(unexpected("getenforce", &other)),
            }
        }
        Command::Setenforce { mode } => channel
            .connect()?
            .expect_ok(&Request::SetEnforce { mode: *mode })
            .map_err(failed(&format!("setenforce {}", mode.name()))),
        Command::Loadpolicy { file } => load_policy(channel, file),
        Command::BlockList { domain } => {
            let request = Request::BlockList {
                domain: DomainRef::parse(domain),
            };
            let what = format!("block-list {domain}");
            match channel.connect()?.call(&request).map_err(failed(&what))? {
                Response::Blocks(devices) => {
                    print!("{}", format::block_list(&devices));
                    Ok(())
                }
                other => Err(unexpected(&what, &other)),
            }
        }
        Command::Bundle { .. }
        | Command::CheckConfig { .. }
        | Command::Policy(_)
        | Command::Boot { .. } => Err("not a runtime command".to_string()),
    }
}

fn unexpected(what: &str, response: &Response) -> String {
    format!("{what}: control channel: unexpected answer {response:?}")
}

/// A command on one domain answered `Ok`.
fn simple(
    channel: &Channel,
    name: &str,
    domain: &str,
    request: impl FnOnce(DomainRef) -> Request,
) -> Result<(), String> {
    channel
        .connect()?
        .expect_ok(&request(DomainRef::parse(domain)))
        .map_err(failed(&format!("{name} {domain}")))
}

/// `xl list [-Z] [-l] [DOMAIN...]`.
fn list(channel: &Channel, labels: bool, long: bool, wanted: &[String]) -> Result<(), String> {
    let mut domains = match channel
        .connect()?
        .call(&Request::List)
        .map_err(failed("list"))?
    {
        Response::Domains(domains) => domains,
        other => return Err(unexpected("list", &other)),
    };
    if !wanted.is_empty() {
        let mut chosen = Vec::new();
        for name in wanted {
            let found = domains.iter().find(|domain| match DomainRef::parse(name) {
                DomainRef::Id(id) => domain.id == id,
                DomainRef::Name(name) => domain.name == name,
            });
            match found {
                Some(domain) => chosen.push(domain.clone()),
                None => return Err(format!("list: no domain '{name}'")),
            }
        }
        domains = chosen;
    }
    let text = if long {
        format::list_json(&domains)
    } else {
        format::list_table(&domains, labels)
    };
    print!("{text}");
    Ok(())
}

/// A stream command: prints every `Text` as it comes.
fn stream(
    channel: &Channel,
    what: &str,
    request: &Request,
    live: bool,
    raw: bool,
) -> Result<(), String> {
    let mut client = channel.connect()?;
    let stdout = std::io::stdout();
    client
        .stream(request, live, |bytes| {
            let mut out = stdout.lock();
            if raw {
                out.write_all(bytes)?;
            } else {
                out.write_all(&format::escape_controls(bytes, true))?;
            }
            out.flush()
        })
        .map_err(failed(what))
}

/// `xl create CFG`.
fn create(channel: &Channel, path: &Path) -> Result<(), String> {
    eprintln!("Parsing config from {}", path.display());
    let config = config::load(path).map_err(|error| error.to_string())?;
    if config.control_domain {
        return Err(format!(
            "{}: control_domain = 1: the control domain is built at boot only, from the launch description",
            path.display()
        ));
    }
    if !config.disks.is_empty() || !config.vifs.is_empty() || !config.pci.is_empty() {
        eprintln!(
            "xl: warning: {}: disk, vif and pci are checked but not yet attached by `xl create`",
            path.display()
        );
    }
    // What the hypervisor would refuse is refused here, before the kernel
    // crosses the (slow) channel.
    toolstack::bundle::check_limits(&config)
        .map_err(|message| format!("{}: domain '{}': {message}", path.display(), config.name))?;
    // Bounded: a path to /dev/zero must not take all the memory there is.
    let kernel = toolstack::read_limited(&config.kernel, xen_abi::bundle::MAX_KERNEL_BYTES)
        .map_err(|error| {
            format!(
                "{}: kernel {}: {error}",
                path.display(),
                config.kernel.display()
            )
        })?;
    let too_big = || {
        format!(
            "{}: kernel {} is {} bytes, over the limit of {}",
            path.display(),
            config.kernel.display(),
            kernel.len(),
            xen_abi::bundle::MAX_KERNEL_BYTES
        )
    };
    // Only what the loader reads crosses the channel (no debug information);
    // what does not parse here goes as it is, for the hypervisor's loader to judge.
    let kernel = toolstack::elf::loadable_image(&kernel, config.memory_mib << 20).unwrap_or_else(|_| kernel.clone());
    let spec = CreateSpec {
        name: config.name.clone(),
        memory_mib: config.memory_mib,
        seclabel: config.seclabel.clone(),
        command_line: config.command_line.clone(),
        cpu_weight: config.cpu_weight,
        on_crash: config.on_crash,
        on_poweroff: config.on_poweroff,
        on_reboot: config.on_reboot,
        kernel_bytes: u32::try_from(kernel.len()).map_err(|_| too_big())?,
        kernel_sha256: sha256(&kernel),
    };
    let what = format!("create {}", config.name);
    match channel
        .connect()?
        .upload(&Request::Create(spec), &kernel)
        .map_err(failed(&what))?
    {
        Response::Created { id } => {
            println!(
                "Domain {} created with id {id}",
                format::printable(&config.name)
            );
            Ok(())
        }
        other => Err(unexpected(&what, &other)),
    }
}

/// `xl loadpolicy FILE`.
fn load_policy(channel: &Channel, path: &Path) -> Result<(), String> {
    let bytes = toolstack::read_limited(path, policy::MAX_TEXT_BYTES)
        .map_err(|error| format!("{}: {error}", path.display()))?;
    let compiled = if bytes.starts_with(&xen_abi::policy::MAGIC) {
        bytes
    } else {
        policy::compile_file(path).map_err(|error| error.to_string())?
    };
    let size = u32::try_from(compiled.len())
        .map_err(|_| format!("{}: the policy is too large", path.display()))?;
    let request = Request::LoadPolicy {
        size,
        sha256: sha256(&compiled),
    };
    let what = format!("loadpolicy {}", path.display());
    match channel
        .connect()?
        .upload(&request, &compiled)
        .map_err(failed(&what))?
    {
        Response::Ok => Ok(()),
        other => Err(unexpected(&what, &other)),
    }
}
