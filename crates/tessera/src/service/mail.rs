//! The outbox: composing mails from the templates in `templates/email/`, and the worker step
//! that sends what is due over SMTP (lettre, rustls), with retries and backoff.
//!
//! Requests only write mails to the outbox (in the transaction of the change that causes
//! them) and wake the worker; no request waits on the mail server. The worker claims due mails
//! under a lease measured on the service's clock, so a claim of an instance that died expires
//! and another instance sends the mail; on PostgreSQL the claim skips rows other instances hold.
//! A failed send is tried again after 20 s, then after twice as long each time, at most hourly,
//! and given up one day after the mail was queued.

use super::Tessera;
use super::error::{Error, Result};
use crate::config::{Config, Profile, SmtpSecurity, SmtpUrl};
use crate::domain::Email;
use crate::store::{MailKind, OutgoingMail, QueuedMail};
use askama::Template;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;

/// Mails claimed at once by one worker pass.
pub const MAIL_BATCH: u32 = 10;
/// How long a claim lasts: longer than a send can take (the SMTP timeout).
const LEASE: Duration = Duration::from_secs(120);
/// The SMTP client's timeout for each command.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);
/// The first retry's delay; each later one doubles, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(20);
/// The longest delay between two tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How long a mail is tried before it is given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(86_400);

/// How mails leave.
enum Delivery {
    /// Over SMTP.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Written to the log at `info` (profile `dev` without a mail server).
    Log,
    /// Not at all (profile `prod` without a mail server): nothing is queued.
    Off,
}

/// The mail settings and the worker's wake-up.
pub(crate) struct Outbox {
    delivery: Delivery,
    from: Mailbox,
    /// The right part of `Message-ID`s: the sender's domain.
    id_domain: String,
    /// The product name mails show.
    pub(crate) product: String,
    /// Links start with it.
    pub(crate) issuer: String,
    /// How long a verification link works.
    pub(crate) link_ttl: Duration,
    /// How long a reset link works.
    pub(crate) reset_ttl: Duration,
    /// Whether signing in needs a verified address.
    pub(crate) require_verified: bool,
    /// Wakes the worker when a mail is queued.
    pub(crate) wake: Notify,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let delivery = match self.delivery {
            Delivery::Smtp(_) => "smtp",
            Delivery::Log => "log",
            Delivery::Off => "off",
        };
        f.debug_struct("Outbox").field("delivery", &delivery).field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl Outbox {
    /// The outbox the configuration describes.
    pub(crate) fn from_config(config: &Config) -> Result<Outbox> {
        let from: Mailbox = config.email_from.parse().map_err(|e| Error::internal(format!("TESSERA_EMAIL_FROM: {e}")))?;
        let id_domain = from.email.domain().trim_start_matches('[').trim_end_matches(']').to_owned();
        let delivery = match (&config.smtp_url, config.profile) {
            (Some(url), _) => Delivery::Smtp(transport(url, &id_domain)?),
            (None, Profile::Dev) => Delivery::Log,
            (None, Profile::Prod) => Delivery::Off,
        };
        Ok(Outbox {
            delivery,
            from,
            id_domain,
            product: config.branding.product_name.clone(),
            issuer: config.issuer.clone(),
            link_ttl: config.email_link_ttl.as_std(),
            reset_ttl: config.password_reset_ttl.as_std(),
            require_verified: config.require_verified_email,
            wake: Notify::new(),
        })
    }

    /// How mails leave, in words: the console's overview shows it.
    pub(crate) fn delivery(&self) -> &'static str {
        match self.delivery {
            Delivery::Smtp(_) => "sent over SMTP",
            Delivery::Log => "written to the log (no mail server set)",
            Delivery::Off => "off (no mail server set)",
        }
    }

    /// Whether mails are queued at all (not in `prod` without a mail server).
    pub(crate) fn enabled(&self) -> bool {
        !matches!(self.delivery, Delivery::Off)
    }

    /// The mail as it goes out: both parts, `Message-ID` (stable across retries), `Date` (when
    /// it was queued) and `Auto-Submitted: auto-generated` (RFC 3834).
    fn message(&self, mail: &QueuedMail) -> std::result::Result<Message, String> {
        let to: Mailbox = mail.recipient.parse().map_err(|e| format!("recipient: {e}"))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .date(std::time::SystemTime::from(mail.created_at))
            .message_id(Some(format!("<{}@{}>", mail.id.simple(), self.id_domain)))
            .header(AutoSubmitted)
            .multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()))
            .map_err(|e| format!("message: {e}"))
    }
}

/// The SMTP transport of `TESSERA_SMTP_URL`.
fn transport(url: &SmtpUrl, hello: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    let builder = match url.security {
        SmtpSecurity::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host.clone()),
        SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&url.host).map_err(Error::internal)?,
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&url.host).map_err(Error::internal)?,
    };
    let mut builder = builder.port(url.port).timeout(Some(SMTP_TIMEOUT)).hello_name(ClientId::Domain(hello.to_owned()));
    if let Some(user) = &url.username {
        builder = builder.credentials(Credentials::new(user.clone(), url.expose_password().unwrap_or_default().to_owned()));
    }
    Ok(builder.build())
}

/// `Auto-Submitted: auto-generated` (RFC 3834): no auto-replies, please.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> std::result::Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// The delay before the next try after `attempts` tries: 20 s, 40 s, 80 s, … at most an hour.
pub fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// `s` with its first letter in capitals.
fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// "24 hours", "30 minutes": how long a link works, in words.
fn in_words(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs.is_multiple_of(86_400) && secs >= 2 * 86_400 {
        (secs / 86_400, "day")
    } else if secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else {
        (secs.div_ceil(60), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[derive(Template)]
#[template(path = "email/verify.txt")]
struct VerifyText<'a> {
    product: &'a str,
    email: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "email/verify.html")]
struct VerifyHtml<'a> {
    product: &'a str,
    email: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "email/reset.txt")]
struct ResetText<'a> {
    product: &'a str,
    email: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "email/reset.html")]
struct ResetHtml<'a> {
    product: &'a str,
    email: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "email/notice.txt")]
struct NoticeText<'a> {
    product: &'a str,
    headline: &'a str,
    what: &'a str,
    forgot_link: &'a str,
}

#[derive(Template)]
#[template(path = "email/notice.html")]
struct NoticeHtml<'a> {
    product: &'a str,
    headline: &'a str,
    what: &'a str,
    forgot_link: &'a str,
}

#[derive(Template)]
#[template(path = "email/factor.txt")]
struct FactorText<'a> {
    product: &'a str,
    headline: &'a str,
    what: &'a str,
    when: &'a str,
    if_you: &'a str,
    account_link: &'a str,
    forgot_link: &'a str,
}

#[derive(Template)]
#[template(path = "email/factor.html")]
struct FactorHtml<'a> {
    product: &'a str,
    headline: &'a str,
    what: &'a str,
    when: &'a str,
    if_you: &'a str,
    account_link: &'a str,
    forgot_link: &'a str,
}

/// What a notice says.
#[derive(Debug, Clone)]
pub(crate) enum Notice {
    /// The account's address changed from the recipient's to `to`.
    EmailChanged { to: String },
    /// The password was changed.
    PasswordChanged,
    /// The password was reset through a link.
    PasswordReset,
    /// A change of the second factors.
    Factor(FactorNotice),
}

/// What a notice about the second factors says.
#[derive(Debug, Clone)]
pub(crate) enum FactorNotice {
    /// A second factor was added.
    Added(SecondFactor),
    /// A second factor was removed by its owner.
    Removed(SecondFactor),
    /// New recovery codes replaced the old ones.
    RecoveryCodesReplaced,
    /// An administrator or operator removed every second factor.
    Reset,
    /// A recovery code signed the person in; `left` unused ones remain.
    RecoveryCodeUsed { left: i64 },
}

/// A second factor a notice names.
#[derive(Debug, Clone)]
pub(crate) enum SecondFactor {
    /// An authenticator app.
    Totp,
    /// A passkey with the name its owner gave it.
    Passkey { name: String },
}

impl SecondFactor {
    fn describe(&self) -> String {
        match self {
            SecondFactor::Totp => "an authenticator app (TOTP)".to_owned(),
            SecondFactor::Passkey { name } => format!("the passkey \u{201c}{name}\u{201d}"),
        }
    }
}

/// When a notice's change happened, in words: "30 November 2026, 22:57 UTC".
fn when(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[day padding:none] [month repr:long] [year], [hour]:[minute] UTC");
    at.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_else(|_| at.to_string())
}

impl Tessera {
    /// A mail carrying `link` (a verification or reset link) to `to`.
    pub(crate) fn link_mail(&self, kind: MailKind, to: &Email, link: &str, now: OffsetDateTime) -> Result<OutgoingMail> {
        let o = &self.outbox;
        let product = o.product.as_str();
        let email = to.as_str();
        let (subject, text, html) = match kind {
            MailKind::Reset => {
                let valid_for = in_words(o.reset_ttl);
                let valid_for = valid_for.as_str();
                (
                    format!("Reset your {product} password"),
                    ResetText { product, email, link, valid_for }.render(),
                    ResetHtml { product, email, link, valid_for }.render(),
                )
            }
            _ => {
                let valid_for = in_words(o.link_ttl);
                let valid_for = valid_for.as_str();
                (
                    format!("Confirm your email address for {product}"),
                    VerifyText { product, email, link, valid_for }.render(),
                    VerifyHtml { product, email, link, valid_for }.render(),
                )
            }
        };
        let mail = OutgoingMail::new(kind, to, subject, text.map_err(Error::internal)?, html.map_err(Error::internal)?, now);
        Ok(OutgoingMail { link: Some(link.to_owned()), ..mail })
    }

    /// A notice to `to`, when mails are sent at all.
    pub(crate) fn notice_mail(&self, notice: &Notice, to: &Email, now: OffsetDateTime) -> Result<Option<OutgoingMail>> {
        if !self.outbox.enabled() {
            return Ok(None);
        }
        let product = self.outbox.product.as_str();
        let (kind, headline, what) = match notice {
            Notice::EmailChanged { to: new } => (
                MailKind::EmailChanged,
                format!("The email address of your {product} account was changed"),
                format!("The account that used {} now uses {new}. Mail about it goes there from now on.", to.as_str()),
            ),
            Notice::PasswordChanged => (
                MailKind::PasswordChanged,
                format!("Your {product} password was changed"),
                format!("The password of the {product} account of {} was changed; its other sessions were ended.", to.as_str()),
            ),
            Notice::PasswordReset => (
                MailKind::PasswordReset,
                format!("Your {product} password was reset"),
                format!(
                    "The password of the {product} account of {} was reset with a link sent by mail; every session was ended.",
                    to.as_str()
                ),
            ),
            Notice::Factor(notice) => return self.factor_notice(notice, to, now).map(Some),
        };
        let forgot_link = format!("{}/password/forgot", self.outbox.issuer);
        let (headline, what, forgot_link) = (headline.as_str(), what.as_str(), forgot_link.as_str());
        let text = NoticeText { product, headline, what, forgot_link }.render().map_err(Error::internal)?;
        let html = NoticeHtml { product, headline, what, forgot_link }.render().map_err(Error::internal)?;
        Ok(Some(OutgoingMail::new(kind, to, headline.to_owned(), text, html, now)))
    }

    /// The mail of a notice about the second factors: what changed, when, and a link to the
    /// account page.
    fn factor_notice(&self, notice: &FactorNotice, to: &Email, now: OffsetDateTime) -> Result<OutgoingMail> {
        let product = self.outbox.product.as_str();
        let account = to.as_str();
        let nothing_to_do = "If this was you, there is nothing to do.";
        let (kind, headline, what, if_you) = match notice {
            FactorNotice::Added(factor) => (
                MailKind::FactorAdded,
                format!("A second factor was added to your {product} account"),
                format!(
                    "{} was added as a second factor of the {product} account of {account}. It can now finish a sign-in.",
                    capitalized(&factor.describe())
                ),
                nothing_to_do,
            ),
            FactorNotice::Removed(factor) => (
                MailKind::FactorRemoved,
                format!("A second factor was removed from your {product} account"),
                format!(
                    "{} was removed from the second factors of the {product} account of {account}; it no longer signs anyone in.",
                    capitalized(&factor.describe())
                ),
                nothing_to_do,
            ),
            FactorNotice::RecoveryCodesReplaced => (
                MailKind::RecoveryCodes,
                format!("New recovery codes for your {product} account"),
                format!("New recovery codes were made for the {product} account of {account}. The old ones no longer work."),
                "If this was you, keep the new codes somewhere safe.",
            ),
            FactorNotice::Reset => (
                MailKind::FactorsReset,
                format!("The second factors of your {product} account were removed"),
                format!(
                    "An administrator removed every second factor of the {product} account of {account} (authenticator app, \
                     recovery codes and passkeys): the password alone signs in now."
                ),
                "If you asked for this, add a second factor again on your account page.",
            ),
            FactorNotice::RecoveryCodeUsed { left } => (
                MailKind::RecoveryCodeUsed,
                format!("A recovery code was used to sign in to your {product} account"),
                format!(
                    "A recovery code finished a sign-in to the {product} account of {account}; it works no more. {} left.",
                    match left {
                        0 => "No unused recovery code is".to_owned(),
                        1 => "1 unused recovery code is".to_owned(),
                        n => format!("{n} unused recovery codes are"),
                    }
                ),
                nothing_to_do,
            ),
        };
        let when = when(now);
        let account_link = format!("{}/account", self.outbox.issuer);
        let forgot_link = format!("{}/password/forgot", self.outbox.issuer);
        let (headline, what, when, account_link, forgot_link) =
            (headline.as_str(), what.as_str(), when.as_str(), account_link.as_str(), forgot_link.as_str());
        let text = FactorText { product, headline, what, when, if_you, account_link, forgot_link }.render().map_err(Error::internal)?;
        let html = FactorHtml { product, headline, what, when, if_you, account_link, forgot_link }.render().map_err(Error::internal)?;
        Ok(OutgoingMail::new(kind, to, headline.to_owned(), text, html, now))
    }

    /// Counts mails just queued and wakes the worker.
    pub(crate) fn mails_queued(&self, kinds: &[MailKind]) {
        for kind in kinds {
            crate::metrics::Metrics::count(&self.metrics.mail_queued, "kind", kind.as_str());
        }
        if !kinds.is_empty() {
            self.outbox.wake.notify_one();
        }
    }

    /// What the mail worker waits on between passes.
    pub fn mail_wakeup(&self) -> &Notify {
        &self.outbox.wake
    }

    /// One pass of the mail worker: claims the due mails (at most [`MAIL_BATCH`]) and sends
    /// each, marking it sent, scheduling its next try, or giving it up. Returns how many it
    /// claimed (a full batch means more may be due).
    pub async fn deliver_due_mail(&self) -> Result<usize> {
        if !self.outbox.enabled() {
            return Ok(0);
        }
        let now = self.now();
        let claimed = self.store.claim_mails(now, now + LEASE, MAIL_BATCH).await?;
        for mail in &claimed {
            let outcome = self.send_one(mail).await;
            let now = self.now();
            match outcome {
                Ok(()) => {
                    self.store.mail_sent(mail.id, now).await?;
                    self.metrics.mail_sent.inc();
                }
                Err(why) if now - mail.created_at >= GIVE_UP_AFTER => {
                    tracing::error!(mail = %mail.id, kind = mail.kind.as_str(), attempts = mail.attempts, error = %why, "giving up a mail after a day of failures");
                    self.store.mail_failed(mail.id, now, &why).await?;
                    self.metrics.mail_failed.inc();
                    let meta = super::ClientMeta::default();
                    self.audit(&meta, "email.failed", None, None, Some(format!("{} mail {}: {why}", mail.kind.as_str(), mail.id))).await;
                }
                Err(why) => {
                    let wait = backoff(mail.attempts);
                    tracing::warn!(mail = %mail.id, kind = mail.kind.as_str(), attempts = mail.attempts, retry_in_secs = wait.as_secs(), error = %why, "cannot send a mail; will retry");
                    self.store.mail_retry(mail.id, now + wait, &why).await?;
                    self.metrics.mail_retried.inc();
                }
            }
        }
        Ok(claimed.len())
    }

    async fn send_one(&self, mail: &QueuedMail) -> std::result::Result<(), String> {
        match &self.outbox.delivery {
            Delivery::Smtp(transport) => {
                let message = self.outbox.message(mail)?;
                transport.send(message).await.map(|_| ()).map_err(|e| crate::http::error::chain(&e))
            }
            Delivery::Log => {
                tracing::info!(
                    recipient = %mail.recipient,
                    subject = %mail.subject,
                    link = mail.link.as_deref().unwrap_or("none"),
                    "mail (no TESSERA_SMTP_URL: logged, not sent)"
                );
                Ok(())
            }
            Delivery::Off => Err("mail is off".to_owned()),
        }
    }

    /// Seconds since the oldest mail still waiting was queued (0 when none waits).
    pub(crate) async fn oldest_unsent_mail_age(&self) -> Result<i64> {
        Ok(self.store.oldest_unsent_mail().await?.map_or(0, |at| (self.now() - at).whole_seconds().max(0)))
    }

    /// Drops sent and given-up mails and expired link tokens older than two days (a job).
    pub async fn prune_mail(&self) -> Result<u64> {
        Ok(self.store.prune_mail(self.now() - 2 * GIVE_UP_AFTER).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_within_thirty_seconds_and_back_off_to_hourly() {
        assert!(backoff(1) <= Duration::from_secs(30));
        assert_eq!(backoff(2), 2 * backoff(1));
        assert_eq!(backoff(3), 4 * backoff(1));
        assert_eq!(backoff(12), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn a_notice_says_when_in_utc_words() {
        let at = time::macros::datetime!(2026-11-30 22:57:31 +01:00);
        assert_eq!(when(at), "30 November 2026, 21:57 UTC");
        assert_eq!(capitalized("an authenticator app"), "An authenticator app");
        assert_eq!(capitalized(""), "");
    }

    #[test]
    fn link_lifetimes_read_as_words() {
        assert_eq!(in_words(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(in_words(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(in_words(Duration::from_secs(3600)), "1 hour");
        assert_eq!(in_words(Duration::from_secs(7 * 86_400)), "7 days");
    }
}
