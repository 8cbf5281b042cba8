//! The JSON documents a caller hands in (role permissions, policy rules,
//! workflow definitions, SAN lists, name-constraint subtrees) and the text
//! forms inside them (RFC 4514 names, CIDR ranges, approver references).
//! The first byte picks the reader; the rest is the text.
//!
//! Checked on everything accepted: writing it out and reading it back gives
//! the same value, and normalizing a name twice changes nothing more.
#![no_main]

use clm::crypto::{DistinguishedName, NameConstraints, NameSubtree};
use clm::model::{
    ApproverRef, IpRange, Permissions, PolicyRules, SubjectAlternativeName, WorkflowDefinition,
};
use libfuzzer_sys::fuzz_target;

fn round_trip<T>(value: &T, parse: impl Fn(&str) -> clm::Result<T>)
where
    T: serde::Serialize + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_string(value).expect("an accepted document serializes");
    let back = parse(&json).unwrap_or_else(|err| panic!("{json} was accepted once, then: {err}"));
    assert_eq!(&back, value, "{json}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match selector % 8 {
        0 => {
            if let Ok(permissions) = Permissions::parse(text) {
                round_trip(&permissions, Permissions::parse);
            }
        }
        1 => {
            if let Ok(rules) = PolicyRules::parse(text) {
                round_trip(&rules, PolicyRules::parse);
            }
        }
        2 => {
            if let Ok(definition) = WorkflowDefinition::parse(text) {
                round_trip(&definition, WorkflowDefinition::parse);
            }
        }
        3 => {
            if let Ok(names) = SubjectAlternativeName::parse_list(text) {
                round_trip(&names, SubjectAlternativeName::parse_list);
                for name in &names {
                    if let Ok(normalized) = name.normalized() {
                        assert_eq!(normalized.normalized().as_ref(), Ok(&normalized));
                    }
                }
            }
        }
        4 => {
            if let Ok(range) = IpRange::parse(text) {
                let written = format!("{}/{}", range.network(), range.prefix());
                assert_eq!(IpRange::parse(&written), Ok(range), "{written}");
                assert_eq!(
                    IpRange::from_mask(range.network(), range.mask()),
                    Some(range)
                );
                assert!(range.contains(range.network()));
                assert!(range.covers(&range));
            }
        }
        5 => {
            if let Ok(name) = DistinguishedName::parse(text) {
                let written = name.to_rfc4514();
                let back = DistinguishedName::parse(&written)
                    .unwrap_or_else(|err| panic!("{written:?} (from {text:?}): {err}"));
                assert_eq!(back, clm_fuzz::without_empty(&name), "{written:?}");
                if name.validate().is_ok() && !name.is_empty() {
                    let der = name.to_der().expect("a valid name encodes");
                    assert!(!der.is_empty());
                }
            }
        }
        6 => {
            let _ = ApproverRef::parse(text);
        }
        _ => {
            // A list of subtrees, as a CA's permitted subtrees: what is
            // accepted encodes as NameConstraints and reads back the same.
            let Ok(subtrees) = serde_json::from_str::<Vec<NameSubtree>>(text) else {
                return;
            };
            let Ok(checked) = subtrees
                .iter()
                .map(NameSubtree::checked)
                .collect::<Result<Vec<_>, String>>()
            else {
                return;
            };
            let constraints = NameConstraints {
                permitted: checked,
                excluded: Vec::new(),
            };
            if constraints.is_empty() {
                return;
            }
            let Ok(extension) = constraints.to_extension() else {
                return;
            };
            let back = NameConstraints::of_extensions(std::slice::from_ref(&extension))
                .expect("clm reads the NameConstraints it wrote")
                .expect("the extension written is there");
            assert_eq!(back, constraints);
        }
    }
});
