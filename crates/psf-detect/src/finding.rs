//! What detectors report.

use std::ops::Range;

use serde::Serialize;

/// A kind of personal or sensitive data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EntityType {
    /// An email address.
    Email,
    /// A telephone number, international or national.
    Phone,
    /// A payment card number that passes the Luhn check for a known brand.
    CreditCard,
    /// An IBAN with a valid mod-97 checksum and its country's length.
    Iban,
    /// A US social security number within the issued ranges.
    UsSsn,
    /// A UK national insurance number.
    UkNino,
    /// A passport-like document number next to the word passport.
    Passport,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// A MAC address.
    MacAddress,
    /// A date next to words about birth.
    DateOfBirth,
    /// A URL with a password in it.
    UrlCredentials,
    /// An API key, token or other secret of a known format.
    ApiKey,
    /// A PEM private key block.
    PrivateKey,
    /// A JSON Web Token.
    Jwt,
    /// A Bitcoin or Ethereum address.
    CryptoAddress,
    /// A person's name, as the entity tagger reads it.
    Person,
    /// A street address, as the entity tagger reads it.
    Address,
}

impl EntityType {
    /// Every type, in a stable order.
    pub const ALL: [EntityType; 17] = [
        EntityType::Email,
        EntityType::Phone,
        EntityType::CreditCard,
        EntityType::Iban,
        EntityType::UsSsn,
        EntityType::UkNino,
        EntityType::Passport,
        EntityType::IpAddress,
        EntityType::MacAddress,
        EntityType::DateOfBirth,
        EntityType::UrlCredentials,
        EntityType::ApiKey,
        EntityType::PrivateKey,
        EntityType::Jwt,
        EntityType::CryptoAddress,
        EntityType::Person,
        EntityType::Address,
    ];

    /// The label used in redactions and reports, e.g. `EMAIL`.
    pub fn label(self) -> &'static str {
        match self {
            EntityType::Email => "EMAIL",
            EntityType::Phone => "PHONE",
            EntityType::CreditCard => "CREDIT_CARD",
            EntityType::Iban => "IBAN",
            EntityType::UsSsn => "US_SSN",
            EntityType::UkNino => "UK_NINO",
            EntityType::Passport => "PASSPORT",
            EntityType::IpAddress => "IP_ADDRESS",
            EntityType::MacAddress => "MAC_ADDRESS",
            EntityType::DateOfBirth => "DATE_OF_BIRTH",
            EntityType::UrlCredentials => "URL_CREDENTIALS",
            EntityType::ApiKey => "API_KEY",
            EntityType::PrivateKey => "PRIVATE_KEY",
            EntityType::Jwt => "JWT",
            EntityType::CryptoAddress => "CRYPTO_ADDRESS",
            EntityType::Person => "PERSON",
            EntityType::Address => "ADDRESS",
        }
    }

    /// The data class the manifest's PII policy is written in.
    pub fn class(self) -> DataClass {
        match self {
            EntityType::Email | EntityType::Phone => DataClass::Contact,
            EntityType::CreditCard | EntityType::Iban | EntityType::CryptoAddress => DataClass::Financial,
            EntityType::UsSsn | EntityType::UkNino | EntityType::Passport => DataClass::GovernmentId,
            EntityType::UrlCredentials | EntityType::ApiKey | EntityType::PrivateKey | EntityType::Jwt => {
                DataClass::Credential
            }
            EntityType::DateOfBirth | EntityType::Person => DataClass::Personal,
            EntityType::IpAddress | EntityType::MacAddress | EntityType::Address => DataClass::Location,
        }
    }

    /// Parses a label such as `EMAIL` or `credit_card`.
    pub fn from_label(label: &str) -> Option<EntityType> {
        EntityType::ALL.into_iter().find(|t| t.label().eq_ignore_ascii_case(label))
    }
}

/// The classes of data a PII policy distinguishes (`psf.yaml`: `input.pii`, `output.pii`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    /// Ways to reach a person.
    Contact,
    /// Money and accounts.
    Financial,
    /// Numbers issued by a state.
    GovernmentId,
    /// Secrets that grant access.
    Credential,
    /// Facts about a person.
    Personal,
    /// Where a person or device is.
    Location,
}

impl DataClass {
    /// Every class, in the manifest's order.
    pub const ALL: [DataClass; 6] = [
        DataClass::Contact,
        DataClass::Financial,
        DataClass::GovernmentId,
        DataClass::Credential,
        DataClass::Personal,
        DataClass::Location,
    ];

    /// Parses a class by the name the manifest writes (`government_id`).
    pub fn from_name(name: &str) -> Option<DataClass> {
        DataClass::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The class's name as the manifest writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            DataClass::Contact => "contact",
            DataClass::Financial => "financial",
            DataClass::GovernmentId => "government_id",
            DataClass::Credential => "credential",
            DataClass::Personal => "personal",
            DataClass::Location => "location",
        }
    }
}

/// How strong the evidence behind a finding is; used to settle overlaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// A trained model scored the words and their neighbours; no rule confirms it.
    Model,
    /// The shape matched and words around it agree.
    Context,
    /// The shape matched and its structure is valid (ranges, lengths, formats).
    Structure,
    /// A checksum passed (Luhn, mod-97, Base58Check, bech32).
    Checksum,
}

/// One piece of sensitive data found in a text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// What was found.
    pub entity: EntityType,
    /// Byte range in the scanned text.
    pub span: Range<usize>,
    /// How sure the detector is, 0 to 1.
    pub confidence: f32,
    /// The evidence that settled it.
    pub evidence: Evidence,
    /// The validator that passed, e.g. `luhn`.
    pub validator: &'static str,
}

impl Finding {
    /// The data class of the finding.
    pub fn class(&self) -> DataClass {
        self.entity.class()
    }
}
