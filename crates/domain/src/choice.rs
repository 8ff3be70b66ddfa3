//! Fixed lists of choices ("flat", "house", …) with a stable key for storage, a label for
//! people, and a forgiving `parse` for what people type into forms and spreadsheets.

/// A value that is not one of the choices on offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct ChoiceError {
    /// What was being chosen, e.g. "unit type".
    pub noun: &'static str,
    /// The value as given, trimmed.
    pub given: String,
    /// The keys on offer, in order.
    pub choices: Vec<&'static str>,
}

impl ChoiceError {
    fn message(&self) -> String {
        let choices = self.choices.join(", ");
        match self.given.as_str() {
            "" => format!("No {} given; use one of: {choices}", self.noun),
            given => format!("\"{given}\" is not a {}; use one of: {choices}", self.noun),
        }
    }
}

/// Equal ignoring case and everything but letters and digits, so "Bin store", "bin_store" and
/// "BIN-STORE" all match `bin_store`.
pub(crate) fn loose_eq(a: &str, b: &str) -> bool {
    fn fold(s: &str) -> impl Iterator<Item = char> + '_ {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
    }
    fold(a).eq(fold(b))
}

/// Declares a `Copy` enum of choices with `ALL`, `key`, `label`, `from_key`, a forgiving `parse`
/// (key, label or alias, see [`loose_eq`]) and `Display` as the label.
macro_rules! choice_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($noun:literal) {
            $(
                $(#[$vmeta:meta])*
                $variant:ident => $key:literal, $label:literal $(, also [$($alias:literal),+])?;
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every choice, in the order a form offers them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stable key stored in the database and written in import files.
            pub fn key(self) -> &'static str {
                match self {
                    $(Self::$variant => $key,)+
                }
            }

            /// What people see.
            pub fn label(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)+
                }
            }

            /// The choice with exactly this key (for reading back what was stored).
            pub fn from_key(key: &str) -> Option<Self> {
                match key {
                    $($key => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// What a person typed: the key or label in any case and with any spacing or
            /// punctuation, or a common alternative name.
            pub fn parse(input: &str) -> Result<Self, $crate::choice::ChoiceError> {
                let input = input.trim();
                // Most files use the keys; skip the forgiving comparison for them.
                if let Some(exact) = Self::from_key(input) {
                    return Ok(exact);
                }
                let aliases = |choice: Self| -> &'static [&'static str] {
                    match choice {
                        $(Self::$variant => &[$($($alias),+)?],)+
                    }
                };
                Self::ALL
                    .iter()
                    .copied()
                    .find(|&choice| {
                        $crate::choice::loose_eq(input, choice.key())
                            || $crate::choice::loose_eq(input, choice.label())
                            || aliases(choice)
                                .iter()
                                .any(|alias| $crate::choice::loose_eq(input, alias))
                    })
                    .filter(|_| !input.is_empty())
                    .ok_or_else(|| $crate::choice::ChoiceError {
                        noun: $noun,
                        given: input.to_owned(),
                        choices: Self::ALL.iter().map(|c| c.key()).collect(),
                    })
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.label())
            }
        }
    };
}

pub(crate) use choice_enum;
