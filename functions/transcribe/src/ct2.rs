//! Reader for CTranslate2's `model.bin` (binary format versions 2–6), the only form in
//! which Whisper weights ship on the package registries. No crate reads it, so this is
//! written here from the format's layout:
//!
//! ```text
//! u32 version | (v>=2) str spec, u32 spec_revision | u32 n
//! n × { str name, u8 rank, u32 dims[rank], (v>=4) u8 dtype | (v<4) u8 item_size, u32 n_bytes, bytes }
//! (v>=3) u32 n_aliases × { str alias, str target }
//! ```
//! where `str` is a u16 length (counting a trailing NUL) and the bytes, all little-endian.

use std::collections::HashMap;

/// Element type of a stored variable (CTranslate2's `DataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_id(id: u8) -> Option<DType> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One stored variable: a view into the file's bytes.
#[derive(Debug, Clone)]
pub struct Variable<'a> {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: &'a [u8],
}

impl Variable<'_> {
    /// A scalar integer variable (flags and head counts are stored that way).
    pub fn scalar_i64(&self) -> Option<i64> {
        if !self.shape.iter().all(|&d| d == 1) {
            return None;
        }
        let d = self.data;
        Some(match (self.dtype, d.len()) {
            (DType::I8, 1) => d[0] as i8 as i64,
            (DType::I16, 2) => i16::from_le_bytes([d[0], d[1]]) as i64,
            (DType::I32, 4) => i32::from_le_bytes([d[0], d[1], d[2], d[3]]) as i64,
            _ => return None,
        })
    }

    /// The values as f32, whatever the stored float type.
    pub fn to_f32(&self) -> Result<Vec<f32>, FormatError> {
        let d = self.data;
        Ok(match self.dtype {
            DType::F32 => d.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            DType::F16 => d.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
            DType::BF16 => {
                d.chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)).collect()
            }
            other => return Err(FormatError(format!("expected a float variable, found {other:?}"))),
        })
    }
}

/// IEEE half to single precision, exact (subnormals included). Written out rather than
/// pulling in `half` for one function; the loop is branch-light and runs once at load.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let mant = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if mant == 0 => sign,
        0 => {
            // Subnormal: normalise the mantissa.
            let shift = mant.leading_zeros() - 21;
            let m = (mant << shift) & 0x3ff;
            sign | ((127 - 15 + 1 - shift) << 23) | (m << 13)
        }
        0x1f => sign | 0x7f80_0000 | (mant << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (mant << 13),
    };
    f32::from_bits(bits)
}

#[derive(Debug, thiserror::Error)]
#[error("CTranslate2 model.bin: {0}")]
pub struct FormatError(pub String);

/// A parsed `model.bin`: the spec name and every variable, aliases resolved.
#[derive(Debug)]
pub struct Ct2Model<'a> {
    pub version: u32,
    pub spec: String,
    pub variables: HashMap<String, Variable<'a>>,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| {
            FormatError(format!("truncated: wanted {n} bytes at offset {} of {}", self.pos, self.data.len()))
        })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, FormatError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<String, FormatError> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        String::from_utf8(b.to_vec()).map_err(|_| FormatError("a name is not UTF-8".into()))
    }
}

impl<'a> Ct2Model<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Ct2Model<'a>, FormatError> {
        let mut c = Cursor { data, pos: 0 };
        let version = c.u32()?;
        if !(2..=6).contains(&version) {
            return Err(FormatError(format!("unsupported binary version {version} (expected 2 to 6)")));
        }
        let spec = c.string()?;
        let _revision = c.u32()?;
        let count = c.u32()? as usize;
        // Every variable takes at least 8 bytes, so a count beyond that is corruption.
        if count > data.len() / 8 {
            return Err(FormatError(format!("implausible variable count {count}")));
        }
        let mut variables = HashMap::with_capacity(count);
        for _ in 0..count {
            let name = c.string()?;
            let rank = c.u8()? as usize;
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(c.u32()? as usize);
            }
            let (dtype, n_bytes) = if version >= 4 {
                let id = c.u8()?;
                let dtype =
                    DType::from_id(id).ok_or_else(|| FormatError(format!("`{name}`: unknown data type {id}")))?;
                (dtype, c.u32()? as usize)
            } else {
                let item = c.u8()?;
                let dtype = match item {
                    4 => DType::F32,
                    2 => DType::I16,
                    1 => DType::I8,
                    _ => return Err(FormatError(format!("`{name}`: unknown item size {item}"))),
                };
                (dtype, c.u32()? as usize * dtype.size())
            };
            let elements: usize = shape.iter().product();
            if elements.checked_mul(dtype.size()) != Some(n_bytes) {
                return Err(FormatError(format!(
                    "`{name}`: {n_bytes} bytes do not match shape {shape:?} of {dtype:?}"
                )));
            }
            let bytes = c.take(n_bytes)?;
            variables.insert(name, Variable { shape, dtype, data: bytes });
        }
        if version >= 3 {
            let aliases = c.u32()? as usize;
            for _ in 0..aliases.min(count) {
                let alias = c.string()?;
                let target = c.string()?;
                let var = variables
                    .get(&target)
                    .cloned()
                    .ok_or_else(|| FormatError(format!("alias `{alias}` points to missing `{target}`")))?;
                variables.insert(alias, var);
            }
        }
        Ok(Ct2Model { version, spec, variables })
    }

    pub fn get(&self, name: &str) -> Result<&Variable<'a>, FormatError> {
        self.variables.get(name).ok_or_else(|| FormatError(format!("variable `{name}` is missing")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_conversion_is_exact() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    fn push_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    #[test]
    fn parses_variables_and_aliases_and_rejects_truncation() {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        push_str(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        push_str(&mut b, "w");
        b.push(2);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        b.push(4);
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&[0x00, 0x3c, 0x00, 0xc0]);
        push_str(&mut b, "heads");
        b.push(0);
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&6i16.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        push_str(&mut b, "alias");
        push_str(&mut b, "w");
        let m = Ct2Model::parse(&b).unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.get("w").unwrap().to_f32().unwrap(), vec![1.0, -2.0]);
        assert_eq!(m.get("alias").unwrap().shape, vec![1, 2]);
        assert_eq!(m.get("heads").unwrap().scalar_i64(), Some(6));
        for cut in [3, 10, 30, b.len() - 1] {
            assert!(Ct2Model::parse(&b[..cut]).is_err(), "cut at {cut}");
        }
    }
}
