//! perf.data, one header section at a time: a real file (the `perfdata` seed recorded from `true`) with
//! one section replaced by the input, so mutations reach each section's parser behind a header that
//! parses. The first input byte picks the section:
//!
//! - 0: the attributes section (`perf_file_attr` entries, with their id-section pointers as given),
//! - 1: the ids of the first attribute,
//! - 2: the data section (the records, read with the file's real attributes),
//! - 3 + N, N < 32: feature section N (`HEADER_BUILD_ID` = 2, `HOSTNAME` = 3, `CMDLINE` = 11,
//!   `EVENT_DESC` = 12, `SAMPLE_TIME` = 21, `COMPRESSED` = 27, ...); one the file lacks is added;
//!
//! and the rest of the input is that section's new contents. The file is then read as the `perfdata`
//! target reads one (header, every record; panics inside the reader's guard are not findings).
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stacktop::format::perfdata::PerfDataReader;

/// The template: `perf record -e cpu-clock -g -o perf-true-g.data -- true` (see README.md).
const TEMPLATE: &[u8] = include_bytes!("../seeds/perfdata/perf-true-g.data");
const HEADER_SIZE: u64 = 104;

/// A perf.data file taken apart into its sections.
#[derive(Clone)]
struct File {
    attr_size: u64,
    /// Each attribute without its trailing ids section pointer, and its ids.
    attrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Replaces the whole attributes section when set (pointers and all).
    raw_attrs: Option<Vec<u8>>,
    data: Vec<u8>,
    features: BTreeMap<u32, Vec<u8>>,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The contents of the section whose `{offset, size}` pointer is at `at` in `pointers`.
fn section<'a>(file: &'a [u8], pointers: &[u8], at: usize) -> &'a [u8] {
    let (offset, size) = (
        u64_at(pointers, at) as usize,
        u64_at(pointers, at + 8) as usize,
    );
    &file[offset..offset + size]
}

impl File {
    fn parse(b: &[u8]) -> File {
        let attr_size = u64_at(b, 16);
        let attrs_section = section(b, b, 24);
        let attrs = attrs_section
            .chunks_exact(attr_size as usize)
            .map(|a| {
                let (body, ids) = a.split_at(a.len() - 16);
                (body.to_vec(), section(b, ids, 0).to_vec())
            })
            .collect();
        let data_at = 40;
        let data = section(b, b, data_at).to_vec();
        let data_end = (u64_at(b, data_at) + u64_at(b, data_at + 8)) as usize;
        let mut features = BTreeMap::new();
        let mut index = data_end;
        for bit in 0..256u32 {
            let word = u64_at(b, 72 + (bit as usize / 64) * 8);
            if word >> (bit % 64) & 1 == 1 {
                features.insert(bit, section(b, b, index).to_vec());
                index += 16;
            }
        }
        File {
            attr_size,
            attrs,
            raw_attrs: None,
            data,
            features,
        }
    }

    /// header | ids of each attribute | attributes | data | feature index | feature contents
    fn write(&self) -> Vec<u8> {
        let mut body = Vec::new();
        let at = |body: &Vec<u8>| HEADER_SIZE + body.len() as u64;
        let mut ids_at = Vec::new();
        for (_, ids) in &self.attrs {
            ids_at.push((at(&body), ids.len() as u64));
            body.extend_from_slice(ids);
        }
        let attrs_start = at(&body);
        match &self.raw_attrs {
            Some(raw) => body.extend_from_slice(raw),
            None => {
                for ((attr, _), (offset, size)) in self.attrs.iter().zip(&ids_at) {
                    body.extend_from_slice(attr);
                    body.extend_from_slice(&offset.to_le_bytes());
                    body.extend_from_slice(&size.to_le_bytes());
                }
            }
        }
        let attrs = (attrs_start, at(&body) - attrs_start);
        let data = (at(&body), self.data.len() as u64);
        body.extend_from_slice(&self.data);
        let mut contents_at = at(&body) + 16 * self.features.len() as u64;
        for contents in self.features.values() {
            body.extend_from_slice(&contents_at.to_le_bytes());
            body.extend_from_slice(&(contents.len() as u64).to_le_bytes());
            contents_at += contents.len() as u64;
        }
        for contents in self.features.values() {
            body.extend_from_slice(contents);
        }
        let mut bits = [0u64; 4];
        for &bit in self.features.keys() {
            bits[bit as usize / 64] |= 1 << (bit % 64);
        }
        let mut out = Vec::with_capacity(HEADER_SIZE as usize + body.len());
        out.extend_from_slice(b"PERFILE2");
        for word in [
            HEADER_SIZE,
            self.attr_size,
            attrs.0,
            attrs.1,
            data.0,
            data.1,
            0, // event_types: unused since perf 2.6.x
            0,
        ]
        .into_iter()
        .chain(bits)
        {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&body);
        out
    }
}

fn template() -> &'static File {
    static FILE: OnceLock<File> = OnceLock::new();
    FILE.get_or_init(|| File::parse(TEMPLATE))
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, contents)) = data.split_first() else {
        return;
    };
    let mut file = template().clone();
    match which {
        0 => file.raw_attrs = Some(contents.to_vec()),
        1 => match file.attrs.first_mut() {
            Some((_, ids)) => *ids = contents.to_vec(),
            None => return,
        },
        2 => file.data = contents.to_vec(),
        n @ 3..=34 => {
            file.features.insert(u32::from(n - 3), contents.to_vec());
        }
        _ => return,
    }
    let Ok(mut reader) =
        PerfDataReader::from_bytes(file.write(), Path::new("fuzz.perf.data"), None)
    else {
        return;
    };
    let _ = reader.header().event().map(|e| e.call_chains.name());
    while let Ok(Some(_)) = reader.next_record() {}
    let _ = reader.stats();
});
