//! `GET /problems` and `GET /problems/{slug}`: the documentation of every
//! problem type, where the `type` URI of each error answer points.
//!
//! Served from the one table ([`crate::http::problems`]) as a plain HTML
//! page (no script, no external asset: it works offline), or as JSON when
//! the client asks for `application/json`. Public: a client that got a
//! problem can always read what it means.

use axum::{
    Json,
    extract::Path,
    http::{HeaderMap, HeaderValue, header},
    response::{Html, IntoResponse, Response},
};

use crate::http::{
    error::ApiError,
    problems::{Kind, ProblemType, ProblemTypes},
};

/// Every problem type the API answers with: `type`, `code`, HTTP status,
/// what it means and what to do.
#[utoipa::path(
    get, path = "/problems", tag = "service",
    params(("Accept" = Option<String>, Header, description = "`application/json` for JSON; HTML otherwise")),
    responses((
        status = 200,
        description = "Every problem type: an HTML page, or JSON when `Accept` asks for `application/json`",
        content(
            (ProblemTypes = "application/json"),
            (String = "text/html"),
        ),
    ))
)]
pub async fn list_problems(headers: HeaderMap) -> Response {
    let page = if wants_json(&headers) {
        Json(ProblemTypes::all()).into_response()
    } else {
        let entries: String = Kind::all().iter().map(|kind| entry_html(*kind)).collect();
        Html(page(
            "Problem types",
            &format!(
                "<p>Every error of this API is answered with RFC 9457 problem details \
                 (<code>application/problem+json</code>): <code>type</code> is one of the URIs \
                 below (relative to this gateway), <code>code</code> its stable name, \
                 <code>detail</code> the words for people. Match on <code>code</code>, never on \
                 <code>detail</code>. <a href=\"/problems\">/problems</a> answers JSON to \
                 <code>Accept: application/json</code>.</p>\n\
                 <table>\n<tr><th>code</th><th>status</th><th>type</th></tr>\n{}</table>\n{entries}",
                Kind::all().iter().map(|kind| row_html(*kind)).collect::<String>()
            ),
        ))
        .into_response()
    };
    vary_on_accept(page)
}

/// One problem type's documentation.
#[utoipa::path(
    get, path = "/problems/{slug}", tag = "service",
    params(
        ("slug" = String, Path, description = "The last segment of the type URI: the code in kebab case, e.g. `insufficient-stock`"),
        ("Accept" = Option<String>, Header, description = "`application/json` for JSON; HTML otherwise"),
    ),
    responses(
        (
            status = 200,
            description = "The problem type: an HTML page, or JSON when `Accept` asks for `application/json`",
            content(
                (ProblemType = "application/json"),
                (String = "text/html"),
            ),
        ),
        (status = 404, description = "No problem type has this slug (`NOT_FOUND`)"),
    )
)]
pub async fn get_problem_type(
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = Kind::from_slug(&slug)
        .ok_or_else(|| ApiError::NotFound(format!("No problem type '{slug}'")))?;
    let page = if wants_json(&headers) {
        Json(kind.doc()).into_response()
    } else {
        let entry = kind.entry();
        Html(page(
            entry.code,
            &format!(
                "{}<p><a href=\"/problems\">Every problem type</a></p>\n",
                entry_html(kind)
            ),
        ))
        .into_response()
    };
    Ok(vary_on_accept(page))
}

/// JSON when `Accept` names `application/json` with a weight above that of
/// `text/html` (a browser's `*/*` gets the page).
fn wants_json(headers: &HeaderMap) -> bool {
    let mut json = 0.0_f32;
    let mut html = 0.0_f32;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let weight = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/json" => json = json.max(weight),
                "text/html" => html = html.max(weight),
                _ => {}
            }
        }
    }
    json > 0.0 && json > html
}

/// The answer depends on `Accept`: caches must keep both.
fn vary_on_accept(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    response
}

fn row_html(kind: Kind) -> String {
    let entry = kind.entry();
    format!(
        "<tr><td><a href=\"#{slug}\"><code>{code}</code></a></td><td>{status}</td>\
         <td><a href=\"{uri}\"><code>{uri}</code></a></td></tr>\n",
        slug = entry.slug,
        code = entry.code,
        status = entry.status.as_u16(),
        uri = kind.type_uri(),
    )
}

fn entry_html(kind: Kind) -> String {
    let entry = kind.entry();
    format!(
        "<section id=\"{slug}\">\n<h2><code>{code}</code>: {title}</h2>\n\
         <p>HTTP {status} {reason} &middot; <code>type</code>: \
         <a href=\"{uri}\"><code>{uri}</code></a></p>\n<p>{description}</p>\n</section>\n",
        slug = entry.slug,
        code = entry.code,
        title = escape(entry.title),
        status = entry.status.as_u16(),
        reason = entry.status.canonical_reason().unwrap_or(""),
        uri = kind.type_uri(),
        description = code_spans(&escape(entry.description)),
    )
}

/// A whole page: plain, self-contained (an inline style, nothing fetched).
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} - E-commerce API</title>\n\
         <style>body {{ font-family: sans-serif; max-width: 50rem; margin: 2rem auto; \
         padding: 0 1rem; line-height: 1.5; }} table {{ border-collapse: collapse; }} \
         td, th {{ border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; }} \
         section {{ margin-top: 1.5rem; }}</style>\n\
         </head>\n<body>\n<h1>{title}</h1>\n{body}</body>\n</html>\n",
        title = escape(title),
    )
}

/// `backticks` in the table's text as `<code>` (after escaping).
fn code_spans(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(part);
            out.push_str("</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn json_only_when_asked_for_over_html() {
        assert!(wants_json(&accept("application/json")));
        assert!(wants_json(&accept("text/html;q=0.5, application/json")));
        assert!(!wants_json(&HeaderMap::new()));
        assert!(!wants_json(&accept("*/*")));
        assert!(!wants_json(&accept(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!wants_json(&accept("text/html, application/json;q=0.9")));
        assert!(!wants_json(&accept("application/json;q=0")));
    }

    #[test]
    fn the_page_is_escaped_and_names_every_code() {
        let html = entry_html(Kind::ValidationFailed);
        assert!(html.contains("<code>errors</code>"), "{html}");
        assert!(!code_spans(&escape("`<b>`")).contains("<b>"));
        let rows: String = Kind::all().iter().map(|kind| row_html(*kind)).collect();
        for kind in Kind::all() {
            assert!(rows.contains(kind.code()));
        }
    }
}
