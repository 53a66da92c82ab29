//! The files the pages load, served by Tessera itself from bytes compiled into the binary (the
//! stylesheet, the script, the icon) or made at start-up (the theme, the operator's logo).
//!
//! Each is served under a name holding a hash of its content (`/assets/tessera-1f2e….css`),
//! so it can be cached for a year as immutable: a new build or a new logo is a new name.
//! The `ETag` is the same hash, for clients that revalidate anyway.

use crate::config::{Branding, LOGO_TYPES};
use aws_lc_rs::digest;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

const STYLESHEET: &[u8] = include_bytes!("../../../assets/tessera.css");
const SCRIPT: &[u8] = include_bytes!("../../../assets/tessera.js");
const ICON: &[u8] = include_bytes!("../../../assets/icon.svg");
const ADMIN_STYLESHEET: &[u8] = include_bytes!("../../../assets/admin.css");
const ADMIN_SCRIPT: &[u8] = include_bytes!("../../../assets/admin.js");
const PASSKEY_SCRIPT: &[u8] = include_bytes!("../../../assets/passkeys.js");

/// The largest logo file accepted.
const LOGO_MAX_BYTES: u64 = 512 * 1024;

/// An SVG is a document that could run script if opened on its own: served with a policy
/// that lets it do nothing but draw.
const SVG_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

/// The assets by file name, and the URL of each one the layout links.
#[derive(Debug)]
pub struct Assets {
    files: HashMap<String, Asset>,
    /// `/assets/tessera-HASH.css`.
    pub stylesheet: String,
    /// `/assets/theme-HASH.css`.
    pub theme: String,
    /// `/assets/tessera-HASH.js`.
    pub script: String,
    /// `/assets/icon-HASH.svg`.
    pub icon: String,
    /// `/assets/logo-HASH.EXT`, when a logo is configured.
    pub logo: Option<String>,
    /// `/assets/admin-HASH.css`: the console's own rules.
    pub admin_stylesheet: String,
    /// `/assets/admin-HASH.js`: the console's copy buttons.
    pub admin_script: String,
    /// `/assets/passkeys-HASH.js`: the passkey ceremonies of the sign-in and account pages.
    pub passkey_script: String,
}

#[derive(Debug)]
struct Asset {
    body: Bytes,
    content_type: &'static str,
    etag: HeaderValue,
}

/// The logo file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("TESSERA_LOGO_PATH: {0}")]
pub struct LogoError(String);

impl Assets {
    /// The compiled-in files, the theme for the configured colour, and the logo file read now.
    pub fn load(branding: &Branding) -> Result<Assets, LogoError> {
        let mut files = HashMap::new();
        let mut add = |stem: &str, ext: &str, body: Bytes, content_type: &'static str| {
            let hash = short_hash(&body);
            let name = format!("{stem}-{hash}.{ext}");
            let etag = HeaderValue::from_str(&format!("\"{hash}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
            files.insert(name.clone(), Asset { body, content_type, etag });
            format!("/assets/{name}")
        };
        let stylesheet = add("tessera", "css", Bytes::from_static(STYLESHEET), "text/css; charset=utf-8");
        let theme = add("theme", "css", Bytes::from(super::theme::stylesheet(branding.brand_color)), "text/css; charset=utf-8");
        let script = add("tessera", "js", Bytes::from_static(SCRIPT), "text/javascript; charset=utf-8");
        let icon = add("icon", "svg", Bytes::from_static(ICON), "image/svg+xml");
        let admin_stylesheet = add("admin", "css", Bytes::from_static(ADMIN_STYLESHEET), "text/css; charset=utf-8");
        let admin_script = add("admin", "js", Bytes::from_static(ADMIN_SCRIPT), "text/javascript; charset=utf-8");
        let passkey_script = add("passkeys", "js", Bytes::from_static(PASSKEY_SCRIPT), "text/javascript; charset=utf-8");
        let logo = match &branding.logo_path {
            None => None,
            Some(path) => {
                let (ext, content_type) = logo_type(path)?;
                Some(add("logo", ext, read_logo(path, content_type)?, content_type))
            }
        };
        Ok(Assets { files, stylesheet, theme, script, icon, logo, admin_stylesheet, admin_script, passkey_script })
    }
}

fn logo_type(path: &std::path::Path) -> Result<(&'static str, &'static str), LogoError> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    LOGO_TYPES
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(e, t)| (*e, *t))
        .ok_or_else(|| LogoError(format!("{} is not an .svg, .png, .jpg or .webp file", path.display())))
}

/// Reads the logo, checking that the file is what its name says.
fn read_logo(path: &std::path::Path, content_type: &str) -> Result<Bytes, LogoError> {
    let shown = path.display();
    let size = std::fs::metadata(path).map_err(|e| LogoError(format!("cannot read {shown}: {e}")))?.len();
    if size > LOGO_MAX_BYTES {
        return Err(LogoError(format!("{shown} is {size} bytes; a logo may be at most {LOGO_MAX_BYTES}")));
    }
    let bytes = std::fs::read(path).map_err(|e| LogoError(format!("cannot read {shown}: {e}")))?;
    let looks_right = match content_type {
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => bytes.starts_with(&[0xff, 0xd8, 0xff]),
        "image/webp" => bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        _ => std::str::from_utf8(&bytes).is_ok_and(|text| text.contains("<svg")),
    };
    if !looks_right {
        return Err(LogoError(format!("{shown} does not hold {content_type} data")));
    }
    Ok(Bytes::from(bytes))
}

/// Sixteen hex digits of SHA-256: a new name for new content.
fn short_hash(bytes: &[u8]) -> String {
    digest::digest(&digest::SHA256, bytes).as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /assets/{name}`.
pub async fn serve(State(pages): State<Arc<super::Pages>>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = pages.assets.files.get(&name) else {
        return (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")]).into_response();
    };
    let cache =
        [(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")), (header::ETAG, asset.etag.clone())];
    let fresh = headers.get_all(header::IF_NONE_MATCH).iter().any(|v| v == asset.etag || v == "*");
    if fresh {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let mut response =
        (cache, [(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type))], Body::from(asset.body.clone())).into_response();
    if asset.content_type == "image/svg+xml" {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(SVG_POLICY));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrandColor;
    use std::io::Write;

    #[test]
    fn asset_names_change_with_their_content() {
        let one = Assets::load(&Branding::default()).unwrap();
        let two = Assets::load(&Branding { brand_color: BrandColor::parse("#0a7cff").unwrap(), ..Branding::default() }).unwrap();
        assert_eq!(one.stylesheet, two.stylesheet);
        assert_ne!(one.theme, two.theme);
        assert!(one.stylesheet.starts_with("/assets/tessera-") && one.stylesheet.ends_with(".css"), "{}", one.stylesheet);
        assert_eq!(one.files.len(), 7);
        assert!(one.logo.is_none());
    }

    #[test]
    fn a_logo_is_read_and_checked_against_its_type() {
        let mut svg = tempfile::Builder::new().suffix(".svg").tempfile().unwrap();
        svg.write_all(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>").unwrap();
        let assets = Assets::load(&Branding { logo_path: Some(svg.path().to_owned()), ..Branding::default() }).unwrap();
        assert!(assets.logo.as_deref().is_some_and(|l| l.starts_with("/assets/logo-") && l.ends_with(".svg")));

        let mut fake = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
        fake.write_all(b"<html>not a png</html>").unwrap();
        let err = Assets::load(&Branding { logo_path: Some(fake.path().to_owned()), ..Branding::default() }).unwrap_err();
        assert!(err.to_string().starts_with("TESSERA_LOGO_PATH: ") && err.to_string().contains("does not hold image/png data"), "{err}");

        let missing = Branding { logo_path: Some("/nonexistent/logo.png".into()), ..Branding::default() };
        assert!(Assets::load(&missing).unwrap_err().to_string().contains("cannot read"));
    }
}
