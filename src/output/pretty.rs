//! JSON pretty printing as serde_json's `PrettyFormatter` writes it (two spaces a level), with
//! each line's indentation written at once instead of a write per level (a report's records
//! sit three levels deep: about a quarter of the time of writing the report of the real-traffic
//! mix), and from any depth, for a value spliced into a pretty-printed document (`--flows`
//! records, [`flow_stream`](super::flow_stream)).

use std::io;

use serde::Serialize;

/// `value` pretty-printed to `w`, byte for byte as `serde_json::to_writer_pretty` writes it.
pub fn to_writer<W: io::Write, T: Serialize + ?Sized>(w: W, value: &T) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(w, Pretty::at(0));
    value.serialize(&mut ser)
}

/// `value` pretty-printed, as `serde_json::to_vec_pretty` gives it.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut v = Vec::with_capacity(128);
    to_writer(&mut v, value)?;
    Ok(v)
}

/// serde_json's pretty printing (two spaces a level) of a value that sits `depth` levels deep
/// in a pretty-printed document: its inner lines are indented as the document's are.
pub struct Pretty {
    depth: usize,
    has_value: bool,
}

impl Pretty {
    /// Pretty printing of a value `depth` levels deep (0: a document of its own).
    pub fn at(depth: usize) -> Pretty {
        Pretty {
            depth,
            has_value: false,
        }
    }

    /// `lead`, then the indentation of the current depth, in as few writes as it takes.
    fn line<W: ?Sized + io::Write>(&self, w: &mut W, lead: &[u8]) -> io::Result<()> {
        const SPACES: &[u8; 32] = b"                                ";
        w.write_all(lead)?;
        let mut n = self.depth.saturating_mul(2);
        while n > 0 {
            let k = n.min(SPACES.len());
            w.write_all(SPACES.get(..k).unwrap_or_default())?;
            n -= k;
        }
        Ok(())
    }

    /// An array or object opens one level deeper.
    fn open<W: ?Sized + io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    /// An array or object closes: on a line of its own unless it was empty.
    fn close<W: ?Sized + io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        if self.has_value {
            self.line(w, b"\n")?;
        }
        w.write_all(bracket)
    }

    /// An element or a key starts a line, after a comma unless it is the first.
    fn item<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.line(w, if first { b"\n" } else { b",\n" })
    }
}

impl serde_json::ser::Formatter for Pretty {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.item(w, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.item(w, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "a": 1,
            "empty_object": {},
            "empty_array": [],
            "list": [1, {"x": [true, null], "y": "two\nlines"}, []],
            "object": {"inner": {"deep": [{"k": 1.5, "s": "q\"uote"}]}},
        })
    }

    /// At the top, what serde_json's own pretty printing writes.
    #[test]
    fn a_document_is_written_as_serde_json_writes_it() {
        for v in [
            sample(),
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!(3),
        ] {
            assert_eq!(to_vec(&v).unwrap(), serde_json::to_vec_pretty(&v).unwrap());
        }
    }

    /// A value written at depth 2 reads as the same value pretty-printed inside a document two
    /// levels down: empty and nested objects and arrays, strings with escaped line breaks.
    #[test]
    fn a_nested_value_is_indented_as_in_the_document() {
        let value = sample();
        let doc =
            serde_json::to_string_pretty(&serde_json::json!({ "flows": [value.clone()] })).unwrap();
        let mut got = b"\n    ".to_vec();
        let mut ser = serde_json::Serializer::with_formatter(&mut got, Pretty::at(2));
        value.serialize(&mut ser).unwrap();
        let got = String::from_utf8(got).unwrap();
        let want = format!("{{\n  \"flows\": [{got}\n  ]\n}}");
        assert_eq!(want, doc);
    }
}
