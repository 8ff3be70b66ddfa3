//! Reading submitted forms, repeated keys (checkbox lists) included, and reporting what is
//! wrong with them field by field.

/// A submitted form's fields in order. Repeated keys (checkbox lists) stay repeated.
#[derive(Debug, Clone, Default)]
pub(crate) struct FormData(Vec<(String, String)>);

impl FormData {
    pub(crate) fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    /// Values to fill a form in with (a stored record's), as if they had been submitted.
    pub(crate) fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// Adds a value (another one, for a checkbox list).
    pub(crate) fn push(&mut self, key: &str, value: impl Into<String>) {
        self.0.push((key.to_owned(), value.into()));
    }

    /// Replaces the first value of `key` (or adds it).
    pub(crate) fn set(&mut self, key: &str, value: impl Into<String>) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.into(),
            None => self.push(key, value),
        }
    }

    /// Every field as sent, in order.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The first value of `key`, or "" when the form did not send it.
    pub(crate) fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `key`, in the order sent.
    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What is wrong with a form: (field name, message), in the order of the fields. The page
/// lists them at the top (each a link to its field) and beside each field.
#[derive(Debug, Default)]
pub(crate) struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub(crate) fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    /// Keeps `result`'s value, or records its message against `field`.
    pub(crate) fn take<T: Default>(&mut self, field: &'static str, result: Result<T, String>) -> T {
        result.unwrap_or_else(|message| {
            self.add(field, message);
            T::default()
        })
    }

    /// `value` when nothing was recorded, else the errors.
    pub(crate) fn or<T>(self, value: T) -> Result<T, Self> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    pub(crate) fn extend(&mut self, other: Self) {
        self.0.extend(other.0);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn items(&self) -> &[(&'static str, String)] {
        &self.0
    }

    pub(crate) fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}
