use byteorder::{ByteOrder, ReadBytesExt};

use std::io::{Read, Seek, SeekFrom};

use crate::Error;

/// `perf_file_section`
///
/// A PerfFileSection contains a pointer to another section of the perf file.
/// The header contains three such pointers: for attributes, data and event types.
#[derive(Debug, Clone, Copy)]
pub struct PerfFileSection {
    /// offset from start of file
    pub offset: u64,
    /// size of the section
    pub size: u64,
}

impl PerfFileSection {
    pub const STRUCT_SIZE: u64 = 8 + 8;

    pub fn parse<R: Read, T: ByteOrder>(mut reader: R) -> Result<Self, std::io::Error> {
        let offset = reader.read_u64::<T>()?;
        let size = reader.read_u64::<T>()?;
        Ok(Self { offset, size })
    }

    /// Checks that the section lies within a file of `file_len` bytes and returns
    /// the offset of its end. `name` names the section in the error.
    pub(crate) fn end_within(
        &self,
        file_len: u64,
        name: impl FnOnce() -> String,
    ) -> Result<u64, Error> {
        match self.offset.checked_add(self.size) {
            Some(end) if end <= file_len => Ok(end),
            _ => Err(Error::SectionOutOfBounds {
                name: name(),
                offset: self.offset,
                size: self.size,
                file_len,
            }),
        }
    }
}

/// The length of the whole stream, leaving the position where it was.
/// (`Seek::stream_len` is not stable yet.)
pub(crate) fn stream_len<S: Seek>(mut stream: S) -> Result<u64, std::io::Error> {
    let position = stream.stream_position()?;
    let len = stream.seek(SeekFrom::End(0))?;
    if position != len {
        stream.seek(SeekFrom::Start(position))?;
    }
    Ok(len)
}

/// The number of bytes between the stream's position and its end.
pub(crate) fn remaining_len<S: Seek>(mut stream: S) -> Result<u64, std::io::Error> {
    let position = stream.stream_position()?;
    Ok(stream_len(stream)?.saturating_sub(position))
}

/// Returns an error unless `count` items of at least `min_item_size` bytes each
/// fit in `remaining` bytes. Called before `count` sizes an allocation.
pub(crate) fn check_count(
    what: &'static str,
    count: u64,
    min_item_size: u64,
    remaining: u64,
) -> Result<(), Error> {
    let needed = count.saturating_mul(min_item_size);
    if needed > remaining {
        return Err(Error::CountExceedsData {
            what,
            count,
            needed,
            remaining,
        });
    }
    Ok(())
}
