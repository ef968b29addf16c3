//! The keys a `#[derive(Deserialize)]` struct accepts, read off its one declaration. Config
//! sections use them to refuse every unknown key by name and list the known ones, instead of
//! keeping a second list of keys by hand.

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The field names (after `rename`/`rename_all`, without `skip`ped fields) of the struct `T`;
/// empty when `T` is not a struct. serde passes them to `deserialize_struct`, so a deserializer
/// that only records them and stops reads them without any input.
pub fn struct_keys<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut keys: &'static [&'static str] = &[];
    // The probe always stops with an error: there is nothing to deserialize.
    let _ = T::deserialize(Probe(&mut keys));
    keys
}

struct Probe<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("keys read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    #[allow(dead_code)]
    struct Section {
        video_size: Option<String>,
        #[serde(skip)]
        token: Option<String>,
        fps: u32,
    }

    #[test]
    fn renamed_keys_without_skipped_ones() {
        assert_eq!(struct_keys::<Section>(), ["video-size", "fps"]);
    }

    #[test]
    fn a_non_struct_has_no_keys() {
        assert!(struct_keys::<u32>().is_empty());
    }
}
