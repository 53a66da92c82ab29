//! The checks of [`crate::browser`] catch what they are there for: without these, a check
//! that silently passed everything would go unnoticed.

use crate::browser::browser;
use crate::server::server;
use serde_json::json;

#[tokio::test]
async fn the_accessibility_check_finds_a_field_without_a_label() {
    let browser = browser().await;
    browser.goto(&server().url("/no-such-page")).await;
    assert!(browser.serious_accessibility_violations().await.is_empty());

    browser.execute("document.querySelector('main').append(document.createElement('input'));", json!([])).await;

    let violations = browser.serious_accessibility_violations().await;
    assert!(violations.iter().any(|v| v["id"] == "label"), "{violations:#?}");
}

#[tokio::test]
async fn the_browser_refuses_inline_script_and_images_from_another_origin_on_a_page() {
    let browser = browser().await;
    browser.goto(&server().url("/no-such-page")).await;

    // Another origin on loopback: were the policy not enforced, nothing would leave the machine.
    let script = "const done = arguments[arguments.length - 1];
        const seen = [];
        document.addEventListener('securitypolicyviolation', e => seen.push(e.effectiveDirective));
        const inline = document.createElement('script');
        inline.textContent = 'window.inlineRan = true;';
        document.body.append(inline);
        const image = document.createElement('img');
        image.alt = '';
        image.src = 'http://127.0.0.2:9/logo.png';
        document.body.append(image);
        setTimeout(() => done([seen, window.inlineRan === true]), 300);";
    let found = browser.execute_async(script, json!([])).await;

    assert_eq!(found[1], false, "inline script ran");
    let directives: Vec<&str> = found[0].as_array().unwrap().iter().filter_map(|d| d.as_str()).collect();
    assert!(directives.contains(&"script-src-elem") && directives.contains(&"img-src"), "{directives:?}");
    let console = browser.console().await;
    assert!(console.iter().any(|e| e["message"].as_str().unwrap_or_default().contains("Content Security Policy")), "{console:#?}");
}
