//! How the pages show the operator's product: its name, a logo file and an accent colour.
//! Parsed here like every other value; the pages module reads the logo file at start-up.

use super::values::truncated;
use std::fmt;
use std::path::PathBuf;

/// The longest product name the pages show (in the header and the window title).
const PRODUCT_NAME_MAX_CHARS: usize = 60;

/// The file types a logo may be, by extension, with their media types.
pub const LOGO_TYPES: &[(&str, &str)] =
    &[("svg", "image/svg+xml"), ("png", "image/png"), ("jpg", "image/jpeg"), ("jpeg", "image/jpeg"), ("webp", "image/webp")];

/// What the pages show of the operator's product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branding {
    /// Shown in every page's header and title.
    pub product_name: String,
    /// A logo file (SVG, PNG, JPEG or WebP), served by Tessera itself: the pages load nothing
    /// from another origin.
    pub logo_path: Option<PathBuf>,
    /// The accent colour of buttons, links and focus rings.
    pub brand_color: BrandColor,
}

impl Default for Branding {
    fn default() -> Self {
        Branding { product_name: "Tessera".to_owned(), logo_path: None, brand_color: BrandColor::DEFAULT }
    }
}

/// A CSS colour written `#rgb` or `#rrggbb`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BrandColor([u8; 3]);

impl BrandColor {
    /// Tessera's own indigo.
    pub const DEFAULT: BrandColor = BrandColor([0x4f, 0x46, 0xe5]);

    /// Parses `#rgb` or `#rrggbb` (either case).
    pub fn parse(s: &str) -> Result<BrandColor, String> {
        let bad = || format!("`{}` is not a colour written #rrggbb or #rgb", truncated(s, 20));
        let hex = s.strip_prefix('#').filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit())).ok_or_else(bad)?;
        let digit = |i: usize| u8::from_str_radix(&hex[i..=i], 16).map_err(|_| bad());
        match hex.len() {
            3 => Ok(BrandColor([digit(0)? * 17, digit(1)? * 17, digit(2)? * 17])),
            6 => {
                let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
                Ok(BrandColor([byte(0)?, byte(2)?, byte(4)?]))
            }
            _ => Err(bad()),
        }
    }

    /// Red, green and blue.
    pub fn rgb(self) -> [u8; 3] {
        self.0
    }
}

impl fmt::Display for BrandColor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

impl fmt::Debug for BrandColor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BrandColor({self})")
    }
}

/// A name people read: not blank, at most 60 characters, no control characters.
pub(super) fn parse_product_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if s.chars().count() > PRODUCT_NAME_MAX_CHARS {
        return Err(format!("is longer than {PRODUCT_NAME_MAX_CHARS} characters"));
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(s.to_owned())
}

/// A path whose extension names one of [`LOGO_TYPES`]; the file itself is read at start-up.
pub(super) fn parse_logo_path(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    if !LOGO_TYPES.iter().any(|(ext, _)| *ext == extension) {
        return Err(format!("`{}` is not an .svg, .png, .jpg or .webp file", truncated(s, 60)));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_read_in_both_lengths_and_either_case() {
        assert_eq!(BrandColor::parse("#0A7cFF").unwrap().rgb(), [0x0a, 0x7c, 0xff]);
        assert_eq!(BrandColor::parse("#f0c").unwrap().rgb(), [0xff, 0x00, 0xcc]);
        assert_eq!(BrandColor::parse("#F0C").unwrap().to_string(), "#ff00cc");
    }

    #[test]
    fn anything_but_a_hex_colour_is_refused() {
        for bad in ["", "#", "0a7cff", "#0a7cf", "#0a7cffe", "#ggg", "red", "#0a7cff;}", "#+1+2+3", "#ﬀ0"] {
            assert!(BrandColor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn product_names_are_short_printable_text() {
        assert_eq!(parse_product_name("Acme Sign-in").unwrap(), "Acme Sign-in");
        assert!(parse_product_name("").is_err());
        assert!(parse_product_name(&"x".repeat(61)).is_err());
        assert!(parse_product_name("Acme\u{7}").is_err());
    }

    #[test]
    fn a_logo_must_be_an_image_type_the_pages_can_serve() {
        assert!(parse_logo_path("/etc/acme/logo.SVG").is_ok());
        assert!(parse_logo_path("logo.webp").is_ok());
        assert!(parse_logo_path("/etc/passwd").is_err());
        assert!(parse_logo_path("logo.html").is_err());
    }
}
