//! HTTP semantics of the OpenAPI endpoints, as upstream's kube-openapi
//! handlers answer: content negotiation (`/openapi/v2` in JSON or gnostic
//! protobuf, 406 otherwise), `ETag` and `If-None-Match`, the `?hash=` of
//! `/openapi/v3/<gv>` (a matching hash makes the answer immutable, a stale
//! one is redirected to the current URL), and gzip when the client takes it.
//! Pure: the server hands in the request head and sends what comes back.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};

use crate::{Document, OpenApi};

const PROTOBUF_V2: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
const PROTOBUF_V2_DEPRECATED: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
const JSON: &str = "application/json";

/// Media types of an `Accept` header, most preferred first.
fn accepted(headers: &HeaderMap) -> Vec<String> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    let accept = if accept.trim().is_empty() {
        "*/*"
    } else {
        accept
    };
    let mut clauses: Vec<(f32, usize, String)> = accept
        .split(',')
        .enumerate()
        .filter_map(|(i, clause)| {
            let mut parts = clause.split(';');
            let media = parts.next()?.trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0 && !media.is_empty()).then_some((q, i, media))
        })
        .collect();
    clauses.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    clauses.into_iter().map(|(_, _, media)| media).collect()
}

/// Whether `clause` (possibly a wildcard) matches `offered`.
fn matches(clause: &str, offered: &str) -> bool {
    let (ct, cs) = clause.split_once('/').unwrap_or((clause, ""));
    let (ot, os) = offered.split_once('/').unwrap_or((offered, ""));
    (ct == "*" || ct == ot) && (cs == "*" || cs == os)
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn status(code: StatusCode) -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = code;
    response
}

fn not_found() -> Response<Bytes> {
    let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}"#;
    let mut response = Response::new(Bytes::from_static(body.as_bytes()));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The answer carrying `document`: 304 when the client has it, gzip when
/// the client takes it.
fn document_response(
    document: &Document,
    content_type: &'static str,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Bytes> {
    let etag = format!("\"{}\"", document.etag());
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        });
    let gzip = accepts_gzip(headers);
    let mut response = if fresh {
        status(StatusCode::NOT_MODIFIED)
    } else if method == Method::HEAD {
        Response::new(Bytes::new())
    } else if gzip {
        Response::new(document.gzipped().clone())
    } else {
        Response::new(document.bytes())
    };
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    if gzip && !fresh {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

impl OpenApi {
    /// Answers a request for `/openapi/v2`, `/openapi/v3` or
    /// `/openapi/v3/<group-version path>`; `None` for any other path.
    pub fn respond(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Option<Response<Bytes>> {
        let path = uri.path().trim_end_matches('/');
        let v3_gv = match path {
            "/openapi/v2" | "/openapi/v3" => None,
            _ => Some(path.strip_prefix("/openapi/v3/")?),
        };
        if method != Method::GET && method != Method::HEAD {
            return Some(status(StatusCode::METHOD_NOT_ALLOWED));
        }
        let accepted = accepted(headers);
        if path == "/openapi/v2" {
            // Upstream offers JSON first, so `*/*` gets JSON.
            for clause in &accepted {
                if matches(clause, JSON) {
                    return Some(document_response(&self.v2_json(), JSON, method, headers));
                }
                if clause == PROTOBUF_V2 || clause == PROTOBUF_V2_DEPRECATED {
                    return Some(document_response(
                        &self.v2_protobuf(),
                        PROTOBUF_V2,
                        method,
                        headers,
                    ));
                }
            }
            return Some(status(StatusCode::NOT_ACCEPTABLE));
        }
        if !accepted.iter().any(|clause| matches(clause, JSON)) {
            return Some(status(StatusCode::NOT_ACCEPTABLE));
        }
        let Some(gv) = v3_gv else {
            return Some(document_response(&self.v3_index(), JSON, method, headers));
        };
        let Some(document) = self.v3_document(gv) else {
            return Some(not_found());
        };
        let hash = uri.query().and_then(|q| {
            form_pairs(q)
                .find(|(k, _)| *k == "hash")
                .map(|(_, v)| v.to_string())
        });
        let Some(hash) = hash else {
            return Some(document_response(&document, JSON, method, headers));
        };
        if hash != document.etag() {
            let mut response = status(StatusCode::MOVED_PERMANENTLY);
            let location = format!("/openapi/v3/{gv}?hash={}", document.etag());
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            return Some(response);
        }
        let mut response = document_response(&document, JSON, method, headers);
        let h = response.headers_mut();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, immutable"),
        );
        let expires = http_date(SystemTime::now() + Duration::from_secs(365 * 86_400));
        if let Ok(value) = HeaderValue::from_str(&expires) {
            h.insert(header::EXPIRES, value);
        }
        Some(response)
    }
}

fn form_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query.split('&').filter_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (!k.is_empty()).then_some((k, v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_rfc1123() {
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn accept_clauses_are_ordered_by_quality() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json;q=0.5, application/com.github.proto-openapi.spec.v2@v1.0+protobuf"));
        assert_eq!(accepted(&headers), [PROTOBUF_V2_DEPRECATED, JSON]);
    }
}
