//! The theme stylesheet: the operator's accent colour as CSS custom properties, with the
//! colours derived from it that keep text readable (WCAG AA, 4.5:1) whatever colour is
//! configured: the text on a button of that colour, and the colour of links on the light
//! and the dark background. A stylesheet rather than an inline style: the pages'
//! Content-Security-Policy allows no inline style.

use crate::config::BrandColor;

/// The card backgrounds of `tessera.css`, light and dark; link colours must read on them.
const LIGHT_SURFACE: [u8; 3] = [0xff, 0xff, 0xff];
const DARK_SURFACE: [u8; 3] = [0x1a, 0x1f, 0x29];

/// WCAG AA for normal text.
const AA: f64 = 4.5;

/// The theme stylesheet for `brand`.
pub fn stylesheet(brand: BrandColor) -> String {
    let rgb = brand.rgb();
    let on_brand = if contrast(rgb, [0xff; 3]) >= contrast(rgb, [0; 3]) { [0xff; 3] } else { [0; 3] };
    let ink_light = readable_on(rgb, LIGHT_SURFACE, [0; 3]);
    let ink_dark = readable_on(rgb, DARK_SURFACE, [0xff; 3]);
    format!(
        "/* The operator's accent colour (TESSERA_BRAND_COLOR) and the colours derived from it. */\n\
         :root {{ --brand: {}; --on-brand: {}; --brand-ink: {}; }}\n\
         @media (prefers-color-scheme: dark) {{ :root {{ --brand-ink: {}; }} }}\n",
        hex(rgb),
        hex(on_brand),
        hex(ink_light),
        hex(ink_dark)
    )
}

/// `color` mixed towards `toward` (black or white) just enough to reach 4.5:1 on `surface`.
fn readable_on(color: [u8; 3], surface: [u8; 3], toward: [u8; 3]) -> [u8; 3] {
    (0..=20).map(|step| mix(color, toward, f64::from(step) / 20.0)).find(|c| contrast(*c, surface) >= AA).unwrap_or(toward)
}

fn mix(a: [u8; 3], b: [u8; 3], t: f64) -> [u8; 3] {
    let channel = |x: u8, y: u8| {
        let v = f64::from(x) + (f64::from(y) - f64::from(x)) * t;
        // Within 0..=255 by construction.
        v.round().clamp(0.0, 255.0) as u8
    };
    [channel(a[0], b[0]), channel(a[1], b[1]), channel(a[2], b[2])]
}

/// WCAG 2 relative luminance.
fn luminance([r, g, b]: [u8; 3]) -> f64 {
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
    };
    0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
}

/// WCAG 2 contrast ratio, 1 to 21.
fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn colour(s: &str) -> [u8; 3] {
        BrandColor::parse(s).unwrap().rgb()
    }

    fn property(css: &str, name: &str, nth: usize) -> [u8; 3] {
        let at = css.match_indices(&format!("{name}: #")).nth(nth).unwrap().0 + name.len() + 2;
        colour(&css[at..at + 7])
    }

    #[test]
    fn every_derived_colour_reads_at_aa_contrast_whatever_the_brand() {
        for brand in ["#4f46e5", "#ffeb3b", "#00ff00", "#777777", "#000000", "#ffffff", "#0a7cff", "#e11d48"] {
            let css = stylesheet(BrandColor::parse(brand).unwrap());
            let rgb = colour(brand);
            assert_eq!(property(&css, "--brand", 0), rgb);
            assert!(contrast(property(&css, "--on-brand", 0), rgb) >= AA, "button text on {brand}: {css}");
            assert!(contrast(property(&css, "--brand-ink", 0), LIGHT_SURFACE) >= AA, "links on light for {brand}: {css}");
            assert!(contrast(property(&css, "--brand-ink", 1), DARK_SURFACE) >= AA, "links on dark for {brand}: {css}");
        }
    }

    #[test]
    fn a_readable_brand_colour_is_used_as_it_is() {
        let css = stylesheet(BrandColor::DEFAULT);
        assert!(css.contains("--brand: #4f46e5; --on-brand: #ffffff; --brand-ink: #4f46e5;"), "{css}");
    }

    #[test]
    fn contrast_matches_the_wcag_reference_values() {
        assert!((contrast([0; 3], [0xff; 3]) - 21.0).abs() < 1e-9);
        assert!((contrast([0x77; 3], [0xff; 3]) - 4.48).abs() < 0.01);
    }
}
