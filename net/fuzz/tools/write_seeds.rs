//! Writes seed inputs for every fuzz target into `corpus/<target>/` (cargo-fuzz's default
//! corpus folders): the valid frames and the malformed-frame corpus of `ferrix_net::corpus`,
//! cut to each target's input format. Run from `net/fuzz`:
//! `cargo run --bin write-seeds`.

use ferrix_net::corpus::Endpoints;
use ferrix_net::eth::ETH_HEADER_LEN;
use std::fs;
use std::path::Path;

fn write(target: &str, name: &str, data: &[u8]) -> std::io::Result<()> {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir)?;
    let file: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    fs::write(dir.join(file), data)
}

fn main() -> std::io::Result<()> {
    let ep = Endpoints::default();
    let mut frames = vec![
        ("valid udp", ep.udp(b"seed")),
        ("valid ping", ep.ping(1, 1, b"seed")),
        ("valid arp request", ep.arp_request(ep.server_ip)),
        ("valid arp reply", ep.arp_reply()),
    ];
    frames.extend(ep.malformed().into_iter().map(|c| (c.name, c.frame)));
    let mut all = Vec::new();
    for (name, f) in &frames {
        let l3 = f.get(ETH_HEADER_LEN..).unwrap_or_default();
        write("eth", name, f)?;
        write("arp", name, l3)?;
        write("ipv4", name, &[[0u8].as_slice(), l3].concat())?;
        let mut udp = Vec::new();
        udp.extend_from_slice(&ep.client_ip.octets());
        udp.extend_from_slice(&ep.server_ip.octets());
        udp.extend_from_slice(l3.get(20..).unwrap_or_default());
        write("udp", name, &udp)?;
        let mut one = (f.len() as u16).to_be_bytes().to_vec();
        one.extend_from_slice(f);
        write("stack", name, &one)?;
        all.extend_from_slice(&one);
    }
    write("stack", "all frames in a row", &all)?;
    println!("wrote seeds for {} frames under corpus/", frames.len());
    Ok(())
}
