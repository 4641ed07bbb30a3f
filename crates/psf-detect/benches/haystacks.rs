//! Inputs shared by the benchmarks and the latency example, so both measure the same
//! text.

/// A 1 kB customer message with four PII values (email, phone, card, IBAN) and no
/// injection.
pub fn prompt_1k() -> String {
    let mut s = String::from(
        "Hello, I ordered a lamp last week and it arrived broken. My email is jane.doe@example.com \
         and you can call me on +44 20 7946 0958. I paid with card 4111 1111 1111 1111 and would like \
         a refund to my account GB82 WEST 1234 5698 7654 32 please. ",
    );
    while s.len() < 1024 {
        s.push_str("The box was damaged and the glass shade was in pieces when I opened it. ");
    }
    s
}
