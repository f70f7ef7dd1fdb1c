//! Which stored resources a search may show a caller, decided by the
//! service and applied inside the search's own SQL, so that totals and
//! pages count only what the caller may see.

/// One test on a resource's search index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Every resource.
    All,
    /// The token parameter `param` holds `system|code`.
    Token {
        param: &'static str,
        system: String,
        code: String,
    },
    /// The reference parameter `param` names one of `references`
    /// (`Type/id`); none names nothing.
    Refers {
        param: &'static str,
        references: Vec<String>,
    },
}

/// Visible: any of `any_of` holds (none: nothing is visible), and none of
/// `none_of` does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub any_of: Vec<Condition>,
    pub none_of: Vec<Condition>,
}
