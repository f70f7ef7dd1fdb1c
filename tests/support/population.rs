//! A seeded synthetic migrant population with known duplicates, for
//! measuring Patient `$match` (`just bench-match`).
//!
//! Each person gets one original record at an organization where they live,
//! and some get more records at other organizations: the same person entered
//! again, with the mistakes that happen in practice (another romanization,
//! the native script, typos, swapped or dropped names, estimated birth dates,
//! missing or changed contact details, an identifier only one side knows).
//! Every record is FHIR R4 Patient JSON; the ground truth says which records
//! are the same person. The same [`Config`] always gives the same population.
//!
//! Names come from hand-written tables per origin group (Arabic, Persian and
//! Dari, Pashto, Tigrinya and Amharic, Somali, Ukrainian, Russian, Turkish,
//! Kurdish, Nigerian, Guinean, Latin American, Vietnamese and some European),
//! each name with its native spelling beside its common romanizations, drawn
//! with a Zipf skew so that Mohammed, Ahmed and Ali are as common as they
//! are in reality, and several people share a name and a birth year.

use std::collections::{BTreeMap, BTreeSet};

use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::seq::{IndexedMutRandom, IndexedRandom, SliceRandom};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// Dates are drawn relative to this year, not today, so that a seed gives
/// the same population on any day.
const REFERENCE_YEAR: i32 = 2025;

/// Share of duplicates that are hard: every corruption is then
/// [`HARD_FACTOR`] times as likely (at most 0.9).
pub const HARD_SHARE: f64 = 0.1;

/// How much more likely each corruption is on a hard duplicate.
pub const HARD_FACTOR: f64 = 3.0;

/// Share of people who share given name, family name, gender and birth year
/// with an earlier person of the same origin: different people that a
/// matcher must keep apart.
pub const NAMESAKE_SHARE: f64 = 0.03;

/// Share of people with a phone who share it with an earlier person of
/// the same origin, as a household or a travel group does.
pub const SHARED_PHONE_SHARE: f64 = 0.02;

/// Identifier system of UNHCR registration numbers.
pub const UNHCR_SYSTEM: &str = "https://www.unhcr.org/proGres/individual";

/// Prefix of passport identifier systems; the ISO 3166 alpha-3 code of the
/// issuing country follows.
pub const PASSPORT_SYSTEM_PREFIX: &str = "http://hl7.org/fhir/sid/passport-";

/// Prefix of the per-organization MRN systems; the organization follows.
pub const MRN_SYSTEM_PREFIX: &str = "urn:corridor:mrn:";

/// URL of the patient-nationality extension.
const NATIONALITY_URL: &str = "http://hl7.org/fhir/StructureDefinition/patient-nationality";

/// URL of the patient-birthPlace extension.
const BIRTH_PLACE_URL: &str = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace";

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Distinct people; each has one original record.
    pub people: usize,
    /// Extra records of people who already have one; a person may get
    /// several.
    pub duplicates: usize,
    /// The seed of the only random source.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            people: 10_000,
            duplicates: 2_000,
            seed: 7,
        }
    }
}

/// A generated population: the records, and through [`Record::person`] the
/// ground truth of which records are the same person.
#[derive(Debug, Clone, PartialEq)]
pub struct Population {
    /// How many distinct people the records describe.
    pub people: usize,
    /// Originals and duplicates, shuffled.
    pub records: Vec<Record>,
}

/// One Patient record as an organization entered it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The person it describes (0..people); records with the same person
    /// are duplicates of each other.
    pub person: usize,
    /// The person's origin group, e.g. "Syrian".
    pub origin: &'static str,
    /// The organization that entered it (its MRN system ends in this).
    pub organization: &'static str,
    /// False for the person's original record.
    pub duplicate: bool,
    /// A duplicate drawn with every corruption more likely.
    pub hard: bool,
    /// What differs from the original, in the order applied.
    pub corruptions: Vec<Corruption>,
    /// The FHIR R4 Patient, without an id.
    pub resource: Value,
}

impl Population {
    /// Generate the population `config` describes.
    pub fn generate(config: &Config) -> Self {
        Generator::new(config.seed).run(config)
    }

    /// Every unordered pair of record indexes (lower first) that describe
    /// the same person.
    pub fn true_pairs(&self) -> BTreeSet<(usize, usize)> {
        let mut by_person: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (index, record) in self.records.iter().enumerate() {
            by_person.entry(record.person).or_default().push(index);
        }
        let mut pairs = BTreeSet::new();
        for records in by_person.values() {
            for (n, &a) in records.iter().enumerate() {
                for &b in &records[n + 1..] {
                    pairs.insert((a.min(b), a.max(b)));
                }
            }
        }
        pairs
    }
}

// === Corruptions ===

/// A difference between a duplicate and the original record of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Corruption {
    /// The native script instead of the Latin spelling, or the other way.
    Script,
    /// Another romanization of a given or family name (Mohammed / Mohamed).
    Romanization,
    /// The Arabic article written another way or dropped (Al-Hassan /
    /// Alhassan / El Hassan / Hassan).
    Particle,
    /// One of two given names, or the second of two family names, left out.
    DroppedName,
    /// An estimated date (YYYY-01-01, YYYY-07-01) or the year alone instead
    /// of the real date, or the real date instead of an estimate.
    BirthDatePrecision,
    /// Day and month swapped.
    DayMonthSwapped,
    /// Birth year one off.
    BirthYearOffByOne,
    /// No birth date.
    NoBirthDate,
    /// No gender.
    NoGender,
    /// No phone.
    NoPhone,
    /// Another phone number.
    ChangedPhone,
    /// The same phone written in another format.
    PhoneFormat,
    /// Another city or country of residence.
    ChangedAddress,
    /// A passport or UNHCR number present on one record only.
    IdentifierOnOneRecord,
    /// Nationality or place of birth left out.
    NoNationalityOrBirthPlace,
    /// Given and family name swapped.
    SwappedNames,
    /// One insertion, deletion, substitution or transposition in a name.
    Typo,
    /// The family name, or the whole name, in capitals.
    UpperCase,
}

impl Corruption {
    /// Every kind, in the order they are drawn and applied.
    pub const ALL: [Corruption; 18] = [
        Corruption::Script,
        Corruption::Romanization,
        Corruption::Particle,
        Corruption::DroppedName,
        Corruption::BirthDatePrecision,
        Corruption::DayMonthSwapped,
        Corruption::BirthYearOffByOne,
        Corruption::NoBirthDate,
        Corruption::NoGender,
        Corruption::NoPhone,
        Corruption::ChangedPhone,
        Corruption::PhoneFormat,
        Corruption::ChangedAddress,
        Corruption::IdentifierOnOneRecord,
        Corruption::NoNationalityOrBirthPlace,
        Corruption::SwappedNames,
        Corruption::Typo,
        Corruption::UpperCase,
    ];

    /// How likely a duplicate that is not hard gets this corruption, when it
    /// applies to the record at all (a record without a phone cannot lose
    /// it; a name without an article cannot change it).
    pub fn probability(self) -> f64 {
        match self {
            Corruption::Script => 0.12,
            Corruption::Romanization => 0.30,
            Corruption::Particle => 0.30,
            Corruption::DroppedName => 0.20,
            Corruption::BirthDatePrecision => 0.12,
            Corruption::DayMonthSwapped => 0.04,
            Corruption::BirthYearOffByOne => 0.05,
            Corruption::NoBirthDate => 0.04,
            Corruption::NoGender => 0.05,
            Corruption::NoPhone => 0.15,
            Corruption::ChangedPhone => 0.08,
            Corruption::PhoneFormat => 0.30,
            Corruption::ChangedAddress => 0.10,
            Corruption::IdentifierOnOneRecord => 0.25,
            Corruption::NoNationalityOrBirthPlace => 0.20,
            Corruption::SwappedNames => 0.06,
            Corruption::Typo => 0.15,
            Corruption::UpperCase => 0.08,
        }
    }

    /// A short label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Corruption::Script => "script",
            Corruption::Romanization => "romanization",
            Corruption::Particle => "particle",
            Corruption::DroppedName => "dropped name",
            Corruption::BirthDatePrecision => "date precision",
            Corruption::DayMonthSwapped => "day/month swapped",
            Corruption::BirthYearOffByOne => "year off by one",
            Corruption::NoBirthDate => "no birth date",
            Corruption::NoGender => "no gender",
            Corruption::NoPhone => "no phone",
            Corruption::ChangedPhone => "changed phone",
            Corruption::PhoneFormat => "phone format",
            Corruption::ChangedAddress => "changed address",
            Corruption::IdentifierOnOneRecord => "identifier on one",
            Corruption::NoNationalityOrBirthPlace => "no nationality/birthplace",
            Corruption::SwappedNames => "swapped names",
            Corruption::Typo => "typo",
            Corruption::UpperCase => "upper case",
        }
    }

    /// Applied to the rendered name strings rather than to the fields.
    fn on_rendered_names(self) -> bool {
        matches!(
            self,
            Corruption::SwappedNames | Corruption::Typo | Corruption::UpperCase
        )
    }
}

// === People ===

/// Gender as FHIR codes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gender {
    Male,
    Female,
}

impl Gender {
    /// The FHIR administrative-gender code.
    fn code(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
        }
    }
}

/// A mobile number: the country it belongs to and its national significant
/// number (no trunk prefix, no country code).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Phone {
    country: &'static Country,
    number: String,
}

/// The truth about one person, from which every record of theirs is drawn.
#[derive(Debug, Clone)]
struct Person {
    origin: &'static Origin,
    gender: Gender,
    /// Given names in the order written (Vietnamese: middle name first).
    given: Vec<&'static Name>,
    /// One family name, or two (Spanish paternal and maternal).
    family: Vec<&'static Name>,
    /// The real birth date: year, month, day.
    birth: (i32, u32, u32),
    nationality: &'static str,
    birth_country: &'static str,
    home: &'static Country,
    city: &'static str,
    phone: Option<Phone>,
    passport: Option<(String, String)>,
    unhcr: Option<String>,
}

// === Records ===

/// How a record writes names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScriptMode {
    /// Romanized.
    Latin,
    /// In the native spelling.
    Native,
    /// Both, as two HumanNames (the romanized one first).
    Both,
}

/// How a record writes a birth date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Birth {
    Full(i32, u32, u32),
    /// An estimate: the year and a conventional month (January or July).
    Estimated(i32, u32),
    Year(i32),
}

impl Birth {
    /// The FHIR date: YYYY-MM-DD, YYYY-MM-01 or YYYY.
    fn render(self) -> String {
        match self {
            Birth::Full(y, m, d) => format!("{y:04}-{m:02}-{d:02}"),
            Birth::Estimated(y, m) => format!("{y:04}-{m:02}-01"),
            Birth::Year(y) => format!("{y:04}"),
        }
    }
}

/// How a phone number is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PhoneFormat {
    /// "+963 944 123 456"
    Spaced,
    /// "+963944123456"
    Compact,
    /// "00963944123456"
    DoubleZero,
    /// "0944 123456", only when the record's address is in the phone's
    /// country, which tells a reader what country it belongs to.
    National,
}

impl PhoneFormat {
    /// Every format.
    const ALL: [PhoneFormat; 4] = [
        PhoneFormat::Spaced,
        PhoneFormat::Compact,
        PhoneFormat::DoubleZero,
        PhoneFormat::National,
    ];
}

/// The Arabic article as a record writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Particle {
    /// Al-Hassan
    AlHyphen,
    /// al-Hassan
    LowerHyphen,
    /// Al Hassan
    AlSpace,
    /// Alhassan
    AlJoined,
    /// El-Hassan
    ElHyphen,
    /// El Hassan
    ElSpace,
    /// Elhassan
    ElJoined,
    /// Hassan
    Dropped,
}

impl Particle {
    /// `base` with the article written this way.
    fn apply(self, base: &str) -> String {
        match self {
            Particle::AlHyphen => format!("Al-{base}"),
            Particle::LowerHyphen => format!("al-{base}"),
            Particle::AlSpace => format!("Al {base}"),
            Particle::AlJoined => format!("Al{}", base.to_lowercase()),
            Particle::ElHyphen => format!("El-{base}"),
            Particle::ElSpace => format!("El {base}"),
            Particle::ElJoined => format!("El{}", base.to_lowercase()),
            Particle::Dropped => base.to_owned(),
        }
    }
}

/// The fields of one record before it is written as JSON. Names are kept as
/// (component, romanization) indexes into the person's names so that a
/// corruption can respell them.
#[derive(Debug, Clone)]
struct Fields {
    script: ScriptMode,
    given: Vec<(usize, usize)>,
    family: Vec<(usize, usize)>,
    particle: Particle,
    gender: Option<Gender>,
    birth: Option<Birth>,
    phone: Option<(Phone, PhoneFormat)>,
    country: &'static Country,
    city: Option<&'static str>,
    nationality: bool,
    birth_place: bool,
    passport: bool,
    unhcr: bool,
}

/// One HumanName as strings.
#[derive(Debug, Clone)]
struct WrittenName {
    given: Vec<String>,
    family: Option<String>,
}

// === impl Generator ===

/// The state of one generation: the random source, the pools and what must
/// stay unique.
#[derive(Debug)]
struct Generator {
    rng: ChaCha8Rng,
    origins: WeightedIndex<u32>,
    /// Next MRN per organization.
    mrns: BTreeMap<&'static str, u64>,
    /// Numbers, passports and UNHCR numbers handed out, so that no two
    /// people share one by accident.
    taken: BTreeSet<String>,
}

impl Generator {
    /// A generator seeded with `seed`; each organization's MRNs start at
    /// a number of its own.
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let origins = WeightedIndex::new(ORIGINS.iter().map(|o| o.weight)).expect("origin weights");
        let mut mrns = BTreeMap::new();
        for country in COUNTRIES {
            for &org in country.organizations {
                mrns.insert(org, rng.random_range(10_000..900_000));
            }
        }
        Self {
            rng,
            origins,
            mrns,
            taken: BTreeSet::new(),
        }
    }

    /// People first, then their originals, then the duplicates, then a
    /// shuffle, so that record order says nothing about who is whom.
    fn run(mut self, config: &Config) -> Population {
        let mut people: Vec<Person> = Vec::with_capacity(config.people);
        let mut by_origin: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
        let mut with_phone: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
        for index in 0..config.people {
            let person = self.person(&people, &by_origin, &with_phone);
            by_origin
                .entry(person.origin.label)
                .or_default()
                .push(index);
            if person.phone.is_some() {
                with_phone
                    .entry(person.origin.label)
                    .or_default()
                    .push(index);
            }
            people.push(person);
        }

        let mut records = Vec::with_capacity(config.people + config.duplicates);
        let mut originals = Vec::with_capacity(config.people);
        for (index, person) in people.iter().enumerate() {
            let fields = self.original(person);
            let organization = self.organization(fields.country, None);
            records.push(self.original_record(index, person, &fields, organization));
            originals.push((fields, organization));
        }
        if config.people > 0 {
            for _ in 0..config.duplicates {
                let index = self.rng.random_range(0..config.people);
                let (fields, organization) = &originals[index];
                records.push(self.duplicate(index, &people[index], fields, organization));
            }
        }
        records.shuffle(&mut self.rng);
        Population {
            people: config.people,
            records,
        }
    }

    /// A person; `people` are those drawn so far.
    fn person(
        &mut self,
        people: &[Person],
        by_origin: &BTreeMap<&'static str, Vec<usize>>,
        with_phone: &BTreeMap<&'static str, Vec<usize>>,
    ) -> Person {
        let origin = &ORIGINS[self.origins.sample(&mut self.rng)];
        let gender = if self.rng.random_bool(origin.male_share) {
            Gender::Male
        } else {
            Gender::Female
        };
        let mut given = vec![self.zipf(origin.given(gender), 1.0)];
        match origin.second_given {
            (p, _) if !self.rng.random_bool(p) => {}
            (_, Second::Father) => given.push(self.other(origin.male, 1.0, given[0])),
            (_, Second::SameGender) => {
                given.push(self.other(origin.given(gender), 1.0, given[0]));
            }
            (_, Second::Middle { male, female }) => {
                let middles = if gender == Gender::Male { male } else { female };
                given.insert(0, self.zipf(middles, 0.8));
            }
        }
        let mut family = vec![self.zipf(origin.family, 0.9)];
        if self.rng.random_bool(origin.double_family) {
            family.push(self.other(origin.family, 0.9, family[0]));
        }
        let mut birth = self.birth_date();
        let nationality = *pick(&mut self.rng, origin.nationalities);
        let birth_country = match origin.born_elsewhere {
            (p, elsewhere) if self.rng.random_bool(p) => *pick(&mut self.rng, elsewhere),
            _ => nationality,
        };
        let home = country(pick::<&str>(&mut self.rng, origin.hosts));
        let city = home.cities.choose(&mut self.rng).expect("cities");

        let mut gender = gender;
        let same_origin = by_origin.get(origin.label).map_or(&[][..], Vec::as_slice);
        if !same_origin.is_empty() && self.rng.random_bool(NAMESAKE_SHARE) {
            let other = &people[*same_origin.choose(&mut self.rng).expect("non-empty")];
            gender = other.gender;
            given.clone_from(&other.given);
            family.clone_from(&other.family);
            birth.0 = other.birth.0;
            // 29 February of a leap year may not exist in the other's year.
            birth.2 = birth.2.min(days_in_month(birth.0, birth.1));
        }

        let phone = if self.rng.random_bool(0.65) {
            let shared = with_phone.get(origin.label).map_or(&[][..], Vec::as_slice);
            if !shared.is_empty() && self.rng.random_bool(SHARED_PHONE_SHARE) {
                people[*shared.choose(&mut self.rng).expect("non-empty")]
                    .phone
                    .clone()
            } else {
                let from = if self.rng.random_bool(0.7) {
                    home
                } else {
                    country(nationality)
                };
                Some(self.phone(from))
            }
        } else {
            None
        };
        let passport = self.rng.random_bool(origin.passport).then(|| {
            let issuer = country(nationality).alpha3;
            let value = self.unique(|rng| {
                let a = char::from(b'A' + rng.random_range(0..26u8));
                let b = char::from(b'A' + rng.random_range(0..26u8));
                format!("{a}{b}{:07}", rng.random_range(0..10_000_000u32))
            });
            (format!("{PASSPORT_SYSTEM_PREFIX}{issuer}"), value)
        });
        let unhcr = self.rng.random_bool(origin.unhcr).then(|| {
            self.unique(|rng| {
                let letter = char::from(b'A' + rng.random_range(0..26u8));
                format!(
                    "{:03}-{:02}{letter}{:05}",
                    rng.random_range(100..1000u32),
                    rng.random_range(0..100u32),
                    rng.random_range(0..100_000u32)
                )
            })
        });
        Person {
            origin,
            gender,
            given,
            family,
            birth,
            nationality,
            birth_country,
            home,
            city,
            phone,
            passport,
            unhcr,
        }
    }

    /// A name from `names`, the first ones most often (Zipf with exponent
    /// `s`).
    fn zipf(&mut self, names: &'static [Name], s: f64) -> &'static Name {
        let weights = (1..=names.len()).map(|rank| 1.0 / (rank as f64).powf(s));
        let index = WeightedIndex::new(weights).expect("a name table is not empty");
        &names[index.sample(&mut self.rng)]
    }

    /// A name from `names` that is not `not`.
    fn other(&mut self, names: &'static [Name], s: f64, not: &'static Name) -> &'static Name {
        loop {
            let name = self.zipf(names, s);
            if !std::ptr::eq(name, not) {
                return name;
            }
        }
    }

    /// A birth date, young adults most often.
    fn birth_date(&mut self) -> (i32, u32, u32) {
        const AGES: [((i32, i32), u32); 5] = [
            ((0, 17), 25),
            ((18, 29), 30),
            ((30, 44), 28),
            ((45, 64), 13),
            ((65, 85), 4),
        ];
        let (low, high) = *pick(&mut self.rng, &AGES);
        let year = REFERENCE_YEAR - self.rng.random_range(low..=high);
        let month = self.rng.random_range(1..=12);
        let day = self.rng.random_range(1..=days_in_month(year, month));
        (year, month, day)
    }

    /// A new mobile number of `country` that nobody has yet.
    fn phone(&mut self, country: &'static Country) -> Phone {
        let number = self.unique(|rng| {
            let (prefix, digits) = country.mobile.choose(rng).expect("mobile prefixes");
            let mut number = (*prefix).to_owned();
            for _ in 0..*digits {
                number.push(char::from(b'0' + rng.random_range(0..10u8)));
            }
            number
        });
        Phone { country, number }
    }

    /// A value from `draw` that was not handed out before.
    fn unique(&mut self, mut draw: impl FnMut(&mut ChaCha8Rng) -> String) -> String {
        loop {
            let value = draw(&mut self.rng);
            if self.taken.insert(value.clone()) {
                return value;
            }
        }
    }

    /// The fields of the person's first record.
    fn original(&mut self, person: &Person) -> Fields {
        let origin = person.origin;
        let script = match origin.script {
            ScriptKind::NonLatin => *pick(
                &mut self.rng,
                &[
                    (ScriptMode::Latin, 65),
                    (ScriptMode::Native, 10),
                    (ScriptMode::Both, 25),
                ],
            ),
            ScriptKind::LatinNative => *pick(
                &mut self.rng,
                &[(ScriptMode::Native, 60), (ScriptMode::Latin, 40)],
            ),
            ScriptKind::Latin => ScriptMode::Latin,
        };
        let given = (0..person.given.len())
            .map(|i| (i, self.variant(person.given[i])))
            .collect();
        let family = (0..person.family.len())
            .map(|i| (i, self.variant(person.family[i])))
            .collect();
        let particle = *pick(&mut self.rng, origin.particles.unwrap_or(LEVANT));
        let gender = self.rng.random_bool(0.99).then_some(person.gender);
        let (y, m, d) = person.birth;
        let birth = *pick(
            &mut self.rng,
            &[
                (Some(Birth::Full(y, m, d)), 62),
                (Some(Birth::Estimated(y, 1)), 18),
                (Some(Birth::Estimated(y, 7)), 7),
                (Some(Birth::Year(y)), 8),
                (None, 5),
            ],
        );
        let phone = match &person.phone {
            Some(phone) if self.rng.random_bool(0.85) => {
                let format = self.phone_format(phone, person.home, None);
                Some((phone.clone(), format))
            }
            _ => None,
        };
        Fields {
            script,
            given,
            family,
            particle,
            gender,
            birth,
            phone,
            country: person.home,
            city: self.rng.random_bool(0.6).then_some(person.city),
            nationality: self.rng.random_bool(0.45),
            birth_place: self.rng.random_bool(0.3),
            passport: person.passport.is_some() && self.rng.random_bool(0.7),
            unhcr: person.unhcr.is_some() && self.rng.random_bool(0.75),
        }
    }

    /// Which romanization of `name` a record uses: the first one about half
    /// the time.
    fn variant(&mut self, name: &Name) -> usize {
        let count = name.spelling.latin.len();
        if count == 1 || self.rng.random_bool(0.55) {
            0
        } else {
            self.rng.random_range(1..count)
        }
    }

    /// A format for `phone` on a record living in `home`, other than `not`.
    fn phone_format(
        &mut self,
        phone: &Phone,
        home: &'static Country,
        not: Option<PhoneFormat>,
    ) -> PhoneFormat {
        let national = std::ptr::eq(phone.country, home);
        let formats: Vec<PhoneFormat> = PhoneFormat::ALL
            .into_iter()
            .filter(|&f| (national || f != PhoneFormat::National) && Some(f) != not)
            .collect();
        *formats.choose(&mut self.rng).expect("phone formats")
    }

    /// An organization in `country`, other than `not` when there is
    /// another; elsewhere when `country` has no other.
    fn organization(
        &mut self,
        country: &'static Country,
        not: Option<&'static str>,
    ) -> &'static str {
        let here: Vec<&'static str> = country
            .organizations
            .iter()
            .copied()
            .filter(|&o| Some(o) != not)
            .collect();
        if let Some(org) = here.choose(&mut self.rng) {
            return org;
        }
        let anywhere: Vec<&'static str> = COUNTRIES
            .iter()
            .flat_map(|c| c.organizations.iter().copied())
            .filter(|&o| Some(o) != not)
            .collect();
        anywhere.choose(&mut self.rng).expect("organizations")
    }

    /// Another record of `person` at another organization than the original
    /// one, with corruptions drawn at random.
    fn duplicate(
        &mut self,
        index: usize,
        person: &Person,
        original: &Fields,
        original_org: &'static str,
    ) -> Record {
        let mut fields = original.clone();
        let hard = self.rng.random_bool(HARD_SHARE);
        let mut applied = Vec::new();
        let mut on_names = Vec::new();
        for kind in Corruption::ALL {
            let p = if hard {
                (kind.probability() * HARD_FACTOR).min(0.9)
            } else {
                kind.probability()
            };
            if !self.rng.random_bool(p) {
                continue;
            }
            if kind.on_rendered_names() {
                on_names.push(kind);
            } else if self.corrupt(kind, person, &mut fields) {
                applied.push(kind);
            }
        }
        let organization = self.organization(fields.country, Some(original_org));
        let mut names = self.written_names(person, &fields);
        for kind in on_names {
            if self.corrupt_names(kind, &mut names) {
                applied.push(kind);
            }
        }
        Record {
            person: index,
            origin: person.origin.label,
            organization,
            duplicate: true,
            hard,
            corruptions: applied,
            resource: self.resource(person, &fields, &names, organization),
        }
    }

    /// Apply `kind` to `fields`; false when it does not apply to them.
    fn corrupt(&mut self, kind: Corruption, person: &Person, fields: &mut Fields) -> bool {
        let has_native = person
            .given
            .iter()
            .chain(&person.family)
            .any(|n| n.spelling.native.is_some() || n.particle);
        match kind {
            Corruption::Script => {
                if person.origin.script == ScriptKind::Latin || !has_native {
                    return false;
                }
                fields.script = match fields.script {
                    ScriptMode::Latin => ScriptMode::Native,
                    ScriptMode::Native | ScriptMode::Both => ScriptMode::Latin,
                };
                true
            }
            Corruption::Romanization => {
                if fields.script == ScriptMode::Native {
                    return false;
                }
                let mut choices: Vec<(bool, usize)> = Vec::new();
                for (slot, &(component, _)) in fields.given.iter().enumerate() {
                    if person.given[component].spelling.latin.len() > 1 {
                        choices.push((true, slot));
                    }
                }
                for (slot, &(component, _)) in fields.family.iter().enumerate() {
                    if person.family[component].latin(person.gender).len() > 1 {
                        choices.push((false, slot));
                    }
                }
                let Some(&(is_given, slot)) = choices.choose(&mut self.rng) else {
                    return false;
                };
                let (component, variant) = if is_given {
                    &mut fields.given[slot]
                } else {
                    &mut fields.family[slot]
                };
                let count = if is_given {
                    person.given[*component].spelling.latin.len()
                } else {
                    person.family[*component].latin(person.gender).len()
                };
                *variant = (*variant + self.rng.random_range(1..count)) % count;
                true
            }
            Corruption::Particle => {
                let has_particle = fields
                    .family
                    .iter()
                    .any(|&(component, _)| person.family[component].particle);
                if !has_particle {
                    return false;
                }
                let styles: Vec<Particle> = ALL_PARTICLES
                    .iter()
                    .map(|&(p, _)| p)
                    .filter(|&p| p != fields.particle)
                    .collect();
                fields.particle = *styles.choose(&mut self.rng).expect("particle styles");
                true
            }
            Corruption::DroppedName => {
                if fields.given.len() >= 2 {
                    // The second given name (a father's name, a middle
                    // name) goes missing far more often than the first.
                    let slot = if self.rng.random_bool(0.8) {
                        fields.given.len() - 1
                    } else {
                        0
                    };
                    fields.given.remove(slot);
                    true
                } else if fields.family.len() >= 2 {
                    fields.family.truncate(1);
                    true
                } else {
                    false
                }
            }
            Corruption::BirthDatePrecision => {
                let (y, m, d) = person.birth;
                let r = self.rng.random_bool(0.5);
                fields.birth = match fields.birth {
                    None => return false,
                    Some(Birth::Full(y, ..)) if self.rng.random_bool(0.7) => {
                        Some(Birth::Estimated(y, if r { 1 } else { 7 }))
                    }
                    Some(Birth::Full(y, ..)) => Some(Birth::Year(y)),
                    Some(Birth::Estimated(y, _)) if r => Some(Birth::Year(y)),
                    Some(Birth::Year(y)) if r => Some(Birth::Estimated(y, 1)),
                    Some(Birth::Estimated(..) | Birth::Year(..)) => Some(Birth::Full(y, m, d)),
                };
                true
            }
            Corruption::DayMonthSwapped => match fields.birth {
                Some(Birth::Full(y, m, d)) if d <= 12 && d != m => {
                    fields.birth = Some(Birth::Full(y, d, m));
                    true
                }
                _ => false,
            },
            Corruption::BirthYearOffByOne => {
                let delta = if self.rng.random_bool(0.5) { 1 } else { -1 };
                fields.birth = match fields.birth {
                    None => return false,
                    Some(Birth::Full(y, m, d)) => Some(Birth::Full(
                        y + delta,
                        m,
                        d.min(days_in_month(y + delta, m)),
                    )),
                    Some(Birth::Estimated(y, m)) => Some(Birth::Estimated(y + delta, m)),
                    Some(Birth::Year(y)) => Some(Birth::Year(y + delta)),
                };
                true
            }
            Corruption::NoBirthDate => fields.birth.take().is_some(),
            Corruption::NoGender => fields.gender.take().is_some(),
            Corruption::NoPhone => fields.phone.take().is_some(),
            Corruption::ChangedPhone => {
                let Some((phone, _)) = &fields.phone else {
                    return false;
                };
                let new = self.phone(phone.country);
                let format = self.phone_format(&new, fields.country, None);
                fields.phone = Some((new, format));
                true
            }
            Corruption::PhoneFormat => {
                let Some((phone, format)) = fields.phone.clone() else {
                    return false;
                };
                let new = self.phone_format(&phone, fields.country, Some(format));
                fields.phone = Some((phone, new));
                true
            }
            Corruption::ChangedAddress => {
                if fields.city.is_some() && self.rng.random_bool(0.5) {
                    let others: Vec<&'static str> = fields
                        .country
                        .cities
                        .iter()
                        .copied()
                        .filter(|&c| Some(c) != fields.city)
                        .collect();
                    fields.city = others.choose(&mut self.rng).copied();
                } else {
                    let hosts: Vec<&'static str> = person
                        .origin
                        .hosts
                        .iter()
                        .map(|&(code, _)| code)
                        .chain(["DE", "FR", "IT", "GR"])
                        .filter(|&code| code != fields.country.code)
                        .collect();
                    fields.country = country(hosts.choose(&mut self.rng).expect("hosts"));
                    fields.city = self
                        .rng
                        .random_bool(0.6)
                        .then(|| *fields.country.cities.choose(&mut self.rng).expect("cities"));
                    // A national format no longer says which country the
                    // number belongs to.
                    if let Some((phone, format @ PhoneFormat::National)) = &mut fields.phone
                        && !std::ptr::eq(phone.country, fields.country)
                    {
                        *format = PhoneFormat::Spaced;
                    }
                }
                true
            }
            Corruption::IdentifierOnOneRecord => {
                let mut flips: Vec<&mut bool> = Vec::new();
                if person.passport.is_some() {
                    flips.push(&mut fields.passport);
                }
                if person.unhcr.is_some() {
                    flips.push(&mut fields.unhcr);
                }
                // Drop one the record has; only when it has none, add one
                // the person has.
                flips.sort_by_key(|present| !**present);
                let Some(first) = flips.into_iter().next() else {
                    return false;
                };
                *first = !*first;
                true
            }
            Corruption::NoNationalityOrBirthPlace => {
                if fields.nationality && (!fields.birth_place || self.rng.random_bool(0.5)) {
                    fields.nationality = false;
                    true
                } else if fields.birth_place {
                    fields.birth_place = false;
                    true
                } else {
                    false
                }
            }
            Corruption::SwappedNames | Corruption::Typo | Corruption::UpperCase => false,
        }
    }

    /// Apply a corruption of the written names; false when it does not
    /// apply to them.
    fn corrupt_names(&mut self, kind: Corruption, names: &mut [WrittenName]) -> bool {
        match kind {
            Corruption::SwappedNames => {
                let mut swapped = false;
                for name in names.iter_mut() {
                    if let Some(family) = name.family.take() {
                        if name.given.is_empty() {
                            name.family = Some(family);
                            continue;
                        }
                        name.family = Some(name.given.join(" "));
                        name.given = vec![family];
                        swapped = true;
                    }
                }
                swapped
            }
            Corruption::Typo => {
                let Some(name) = names.choose_mut(&mut self.rng) else {
                    return false;
                };
                let mut parts: Vec<&mut String> = name.given.iter_mut().collect();
                if let Some(family) = &mut name.family {
                    parts.push(family);
                }
                let Some(part) = parts.choose_mut(&mut self.rng) else {
                    return false;
                };
                match typo(&mut self.rng, part) {
                    Some(changed) => {
                        **part = changed;
                        true
                    }
                    None => false,
                }
            }
            Corruption::UpperCase => {
                let whole = self.rng.random_bool(0.3);
                let mut changed = false;
                for name in names.iter_mut() {
                    if let Some(family) = &mut name.family {
                        let upper = family.to_uppercase();
                        changed |= upper != *family;
                        *family = upper;
                    }
                    if whole {
                        for given in &mut name.given {
                            let upper = given.to_uppercase();
                            changed |= upper != *given;
                            *given = upper;
                        }
                    }
                }
                changed
            }
            _ => false,
        }
    }

    /// The HumanNames a record carries.
    fn written_names(&self, person: &Person, fields: &Fields) -> Vec<WrittenName> {
        let write = |native: bool| WrittenName {
            given: fields
                .given
                .iter()
                .map(|&(c, v)| person.given[c].write(v, native, person.gender, fields.particle))
                .collect(),
            family: {
                let parts: Vec<String> = fields
                    .family
                    .iter()
                    .map(|&(c, v)| {
                        person.family[c].write(v, native, person.gender, fields.particle)
                    })
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            },
        };
        match fields.script {
            ScriptMode::Latin => vec![write(false)],
            ScriptMode::Native => vec![write(true)],
            ScriptMode::Both => vec![write(false), write(true)],
        }
    }

    /// The original record of `person`, entered at `organization`.
    fn original_record(
        &mut self,
        index: usize,
        person: &Person,
        fields: &Fields,
        organization: &'static str,
    ) -> Record {
        let names = self.written_names(person, fields);
        Record {
            person: index,
            origin: person.origin.label,
            organization,
            duplicate: false,
            hard: false,
            corruptions: Vec::new(),
            resource: self.resource(person, fields, &names, organization),
        }
    }

    /// The FHIR R4 Patient JSON of a record.
    fn resource(
        &mut self,
        person: &Person,
        fields: &Fields,
        names: &[WrittenName],
        organization: &'static str,
    ) -> Value {
        let mut patient = serde_json::Map::new();
        patient.insert("resourceType".into(), json!("Patient"));

        let mut extensions = Vec::new();
        if fields.nationality {
            extensions.push(json!({
                "url": NATIONALITY_URL,
                "extension": [{
                    "url": "code",
                    "valueCodeableConcept": {
                        "coding": [{"system": "urn:iso:std:iso:3166", "code": person.nationality}]
                    }
                }]
            }));
        }
        if fields.birth_place {
            extensions.push(json!({
                "url": BIRTH_PLACE_URL,
                "valueAddress": {"country": person.birth_country}
            }));
        }
        if !extensions.is_empty() {
            patient.insert("extension".into(), Value::Array(extensions));
        }

        let mut identifiers = Vec::new();
        if self.rng.random_bool(0.9) {
            let next = self.mrns.get_mut(organization).expect("known organization");
            *next += 1;
            identifiers.push(json!({
                "use": "usual",
                "type": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                    "code": "MR"
                }]},
                "system": format!("{MRN_SYSTEM_PREFIX}{organization}"),
                "value": format!("{next:07}")
            }));
        }
        if let (true, Some((system, value))) = (fields.passport, &person.passport) {
            identifiers.push(json!({
                "use": "official",
                "type": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                    "code": "PPN"
                }]},
                "system": system,
                "value": value
            }));
        }
        if let (true, Some(value)) = (fields.unhcr, &person.unhcr) {
            identifiers.push(json!({"system": UNHCR_SYSTEM, "value": value}));
        }
        if !identifiers.is_empty() {
            patient.insert("identifier".into(), Value::Array(identifiers));
        }

        let names: Vec<Value> = names
            .iter()
            .map(|name| {
                let mut value = serde_json::Map::new();
                value.insert("use".into(), json!("official"));
                if let Some(family) = &name.family {
                    value.insert("family".into(), json!(family));
                }
                if !name.given.is_empty() {
                    value.insert("given".into(), json!(name.given));
                }
                Value::Object(value)
            })
            .collect();
        patient.insert("name".into(), Value::Array(names));

        if let Some((phone, format)) = &fields.phone {
            patient.insert(
                "telecom".into(),
                json!([{"system": "phone", "value": write_phone(phone, *format), "use": "mobile"}]),
            );
        }
        if let Some(gender) = fields.gender {
            patient.insert("gender".into(), json!(gender.code()));
        }
        if let Some(birth) = fields.birth {
            patient.insert("birthDate".into(), json!(birth.render()));
        }
        let mut address = serde_json::Map::new();
        if let Some(city) = fields.city {
            address.insert("city".into(), json!(city));
        }
        address.insert("country".into(), json!(fields.country.code));
        patient.insert("address".into(), json!([address]));
        Value::Object(patient)
    }
}

/// One of `items`, by weight.
fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [(T, u32)]) -> &'a T {
    &items
        .choose_weighted(rng, |&(_, weight)| weight)
        .expect("weights")
        .0
}

/// Days in `month` of `year` (Gregorian).
fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `phone` written in `format`.
fn write_phone(phone: &Phone, format: PhoneFormat) -> String {
    let Phone { country, number } = phone;
    let dial = country.dial;
    match format {
        PhoneFormat::Spaced => {
            let sizes: &[usize] = match number.len() {
                7 => &[1, 3, 3],
                8 => &[4, 4],
                9 => &[3, 3, 3],
                10 => &[3, 3, 4],
                _ => &[3, 4, 4],
            };
            let mut groups = Vec::new();
            let mut at = 0;
            for size in sizes {
                let end = (at + size).min(number.len());
                groups.push(&number[at..end]);
                at = end;
            }
            if at < number.len() {
                groups.push(&number[at..]);
            }
            format!("+{dial} {}", groups.join(" "))
        }
        PhoneFormat::Compact => format!("+{dial}{number}"),
        PhoneFormat::DoubleZero => format!("00{dial}{number}"),
        PhoneFormat::National => {
            let split = 3.min(number.len());
            format!("{}{} {}", country.trunk, &number[..split], &number[split..])
        }
    }
}

/// `text` with one typing mistake in a letter: an insertion (often a
/// doubled letter), a deletion, a substitution or a transposition. None
/// when the text is too short to change.
fn typo(rng: &mut ChaCha8Rng, text: &str) -> Option<String> {
    let mut chars: Vec<char> = text.chars().collect();
    let letters: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_alphabetic())
        .collect();
    if letters.len() < 3 {
        return None;
    }
    let at = *letters.choose(rng).expect("letters");
    match rng.random_range(0..4) {
        0 => {
            let letter = if rng.random_bool(0.5) {
                chars[at]
            } else {
                replacement(rng, &chars, chars[at])
            };
            chars.insert(at, letter);
        }
        1 => {
            chars.remove(at);
        }
        2 => {
            let new = replacement(rng, &chars, chars[at]);
            if new == chars[at] {
                return None;
            }
            chars[at] = new;
        }
        _ => {
            let next = letters.iter().copied().find(|&i| i == at + 1)?;
            if chars[at] == chars[next] {
                return None;
            }
            chars.swap(at, next);
        }
    }
    let changed: String = chars.into_iter().collect();
    (changed != text).then_some(changed)
}

/// A letter to type instead of `current`: for ASCII a vowel for a vowel
/// and a consonant for a consonant (keeping case), otherwise another letter
/// of the same word, which keeps the script.
fn replacement(rng: &mut ChaCha8Rng, word: &[char], current: char) -> char {
    const VOWELS: &[u8] = b"aeiouy";
    const CONSONANTS: &[u8] = b"bcdfghjklmnpqrstvwxz";
    if current.is_ascii_alphabetic() {
        let lower = current.to_ascii_lowercase();
        let pool = if VOWELS.contains(&(lower as u8)) {
            VOWELS
        } else {
            CONSONANTS
        };
        let new = char::from(*pool.choose(rng).expect("letters"));
        if current.is_ascii_uppercase() {
            new.to_ascii_uppercase()
        } else {
            new
        }
    } else {
        let others: Vec<char> = word
            .iter()
            .copied()
            .filter(|&c| c.is_alphabetic() && c != current)
            .collect();
        others.choose(rng).copied().unwrap_or(current)
    }
}

// === Tables ===

/// One spelling of a name: native, if the name has one apart from its
/// romanizations, and the romanizations, the most common first.
#[derive(Debug, Clone, Copy)]
struct Spelling {
    native: Option<&'static str>,
    latin: &'static [&'static str],
}

/// A given or family name.
#[derive(Debug, Clone, Copy)]
struct Name {
    spelling: Spelling,
    /// The form a woman bears, where the name inflects (Иванова, Kowalska,
    /// Παπαδοπούλου).
    feminine: Option<Spelling>,
    /// A family name that takes the Arabic article: `native` and `latin`
    /// are then without it (حسن, Hassan for الحسن, Al-Hassan).
    particle: bool,
}

impl Name {
    /// The spelling that a person of `gender` bears.
    fn spelling(&self, gender: Gender) -> &Spelling {
        match (gender, &self.feminine) {
            (Gender::Female, Some(feminine)) => feminine,
            _ => &self.spelling,
        }
    }

    /// The romanizations that a person of `gender` bears.
    fn latin(&self, gender: Gender) -> &'static [&'static str] {
        self.spelling(gender).latin
    }

    /// The name as a record writes it: romanization `variant`, or the
    /// native spelling, with the article written as `particle`.
    fn write(&self, variant: usize, native: bool, gender: Gender, particle: Particle) -> String {
        let spelling = self.spelling(gender);
        let latin = spelling.latin[variant % spelling.latin.len()];
        match (native, spelling.native) {
            (true, Some(native)) if self.particle && particle != Particle::Dropped => {
                format!("ال{native}")
            }
            (true, Some(native)) => native.to_owned(),
            _ if self.particle => particle.apply(latin),
            _ => latin.to_owned(),
        }
    }
}

/// A name with a native spelling.
const fn n(native: &'static str, latin: &'static [&'static str]) -> Name {
    Name {
        spelling: Spelling {
            native: Some(native),
            latin,
        },
        feminine: None,
        particle: false,
    }
}

/// A name written in Latin letters only.
const fn l(latin: &'static [&'static str]) -> Name {
    Name {
        spelling: Spelling {
            native: None,
            latin,
        },
        feminine: None,
        particle: false,
    }
}

/// An Arabic family name with the article al-, given without it.
const fn al(native: &'static str, latin: &'static [&'static str]) -> Name {
    Name {
        spelling: Spelling {
            native: Some(native),
            latin,
        },
        feminine: None,
        particle: true,
    }
}

/// A family name with a feminine form.
const fn nf(
    native: Option<&'static str>,
    latin: &'static [&'static str],
    feminine_native: Option<&'static str>,
    feminine_latin: &'static [&'static str],
) -> Name {
    Name {
        spelling: Spelling { native, latin },
        feminine: Some(Spelling {
            native: feminine_native,
            latin: feminine_latin,
        }),
        particle: false,
    }
}

/// How an origin group's native spellings relate to the Latin alphabet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScriptKind {
    /// Another script (Arabic, Ge'ez, Cyrillic, Greek): records carry the
    /// romanization, the native spelling or both.
    NonLatin,
    /// Latin with letters a foreign keyboard lacks (Çelik, Nguyễn, Müller)
    /// or an orthography of its own (Somali Maxamed): records carry either.
    LatinNative,
    /// Plain Latin.
    Latin,
}

/// Where a second given name comes from.
#[derive(Debug, Clone, Copy)]
enum Second {
    /// The father's name, after the person's own (Arabic, Somali, Afghan).
    Father,
    /// Another name of the same gender (María José, Jean-Pierre).
    SameGender,
    /// A middle name before the given name (Vietnamese Văn, Thị).
    Middle {
        male: &'static [Name],
        female: &'static [Name],
    },
}

/// An origin group: its names, where its people come from and where they
/// live now.
#[derive(Debug)]
struct Origin {
    label: &'static str,
    /// Relative share of the population.
    weight: u32,
    script: ScriptKind,
    male_share: f64,
    /// Nationalities (ISO 3166 alpha-2), by weight.
    nationalities: &'static [(&'static str, u32)],
    /// The probability of a birth outside the country of nationality, and
    /// where.
    born_elsewhere: (f64, &'static [(&'static str, u32)]),
    /// Countries of residence, by weight.
    hosts: &'static [(&'static str, u32)],
    male: &'static [Name],
    female: &'static [Name],
    family: &'static [Name],
    /// The probability of a second given name, and its source.
    second_given: (f64, Second),
    /// The probability of two family names.
    double_family: f64,
    /// How records write the Arabic article, by weight.
    particles: Option<&'static [(Particle, u32)]>,
    /// The probability that a person has a passport (recorded or not).
    passport: f64,
    /// The probability that a person has a UNHCR registration.
    unhcr: f64,
}

impl Origin {
    /// The given names of people of `gender`.
    fn given(&self, gender: Gender) -> &'static [Name] {
        match gender {
            Gender::Male => self.male,
            Gender::Female => self.female,
        }
    }
}

/// The article as written in Syria and Iraq.
const LEVANT: &[(Particle, u32)] = &[
    (Particle::AlHyphen, 40),
    (Particle::LowerHyphen, 10),
    (Particle::AlSpace, 10),
    (Particle::AlJoined, 12),
    (Particle::ElHyphen, 5),
    (Particle::ElSpace, 3),
    (Particle::Dropped, 20),
];

/// The article as written in Egypt and Sudan.
const NILE: &[(Particle, u32)] = &[
    (Particle::AlHyphen, 12),
    (Particle::LowerHyphen, 5),
    (Particle::AlSpace, 5),
    (Particle::AlJoined, 5),
    (Particle::ElHyphen, 20),
    (Particle::ElSpace, 20),
    (Particle::ElJoined, 15),
    (Particle::Dropped, 18),
];

/// Every way of writing the article.
const ALL_PARTICLES: &[(Particle, u32)] = &[
    (Particle::AlHyphen, 1),
    (Particle::LowerHyphen, 1),
    (Particle::AlSpace, 1),
    (Particle::AlJoined, 1),
    (Particle::ElHyphen, 1),
    (Particle::ElSpace, 1),
    (Particle::ElJoined, 1),
    (Particle::Dropped, 1),
];

/// A country: codes, how its mobile numbers look, some cities, and the
/// partner organizations there.
#[derive(Debug, PartialEq, Eq)]
struct Country {
    /// ISO 3166 alpha-2.
    code: &'static str,
    /// ISO 3166 alpha-3, as in passport systems.
    alpha3: &'static str,
    /// Country calling code.
    dial: &'static str,
    /// Trunk prefix of national numbers ("0", Russia "8", none).
    trunk: &'static str,
    /// Mobile number prefixes (after the country code) and how many digits
    /// follow.
    mobile: &'static [(&'static str, usize)],
    cities: &'static [&'static str],
    /// Partner organizations, each with its own MRN system.
    organizations: &'static [&'static str],
}

/// The country with ISO alpha-2 `code`.
fn country(code: &str) -> &'static Country {
    COUNTRIES
        .iter()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("country {code} is in the table"))
}

/// Countries of origin and of residence.
const COUNTRIES: &[Country] = &[
    Country {
        code: "SY",
        alpha3: "SYR",
        dial: "963",
        trunk: "0",
        mobile: &[
            ("93", 7),
            ("94", 7),
            ("95", 7),
            ("96", 7),
            ("98", 7),
            ("99", 7),
        ],
        cities: &["Damascus", "Aleppo", "Homs", "Latakia"],
        organizations: &[],
    },
    Country {
        code: "IQ",
        alpha3: "IRQ",
        dial: "964",
        trunk: "0",
        mobile: &[("750", 7), ("770", 7), ("780", 7), ("790", 7)],
        cities: &["Baghdad", "Mosul", "Basra", "Erbil"],
        organizations: &[],
    },
    Country {
        code: "SD",
        alpha3: "SDN",
        dial: "249",
        trunk: "0",
        mobile: &[("90", 7), ("91", 7), ("92", 7), ("99", 7)],
        cities: &["Khartoum", "Omdurman", "Nyala"],
        organizations: &[],
    },
    Country {
        code: "EG",
        alpha3: "EGY",
        dial: "20",
        trunk: "0",
        mobile: &[("10", 8), ("11", 8), ("12", 8), ("15", 8)],
        cities: &["Cairo", "Alexandria", "Giza"],
        organizations: &[],
    },
    Country {
        code: "AF",
        alpha3: "AFG",
        dial: "93",
        trunk: "0",
        mobile: &[("70", 7), ("72", 7), ("77", 7), ("78", 7), ("79", 7)],
        cities: &["Kabul", "Herat", "Mazar-i-Sharif", "Kandahar", "Jalalabad"],
        organizations: &[],
    },
    Country {
        code: "IR",
        alpha3: "IRN",
        dial: "98",
        trunk: "0",
        mobile: &[("912", 7), ("935", 7), ("901", 7), ("921", 7)],
        cities: &["Tehran", "Mashhad", "Isfahan"],
        organizations: &[],
    },
    Country {
        code: "PK",
        alpha3: "PAK",
        dial: "92",
        trunk: "0",
        mobile: &[("300", 7), ("321", 7), ("333", 7), ("345", 7)],
        cities: &["Peshawar", "Quetta", "Karachi"],
        organizations: &[],
    },
    Country {
        code: "ER",
        alpha3: "ERI",
        dial: "291",
        trunk: "0",
        mobile: &[("7", 6)],
        cities: &["Asmara", "Keren", "Massawa"],
        organizations: &[],
    },
    Country {
        code: "ET",
        alpha3: "ETH",
        dial: "251",
        trunk: "0",
        mobile: &[("91", 7), ("92", 7), ("93", 7), ("94", 7)],
        cities: &["Addis Ababa", "Mekelle", "Gondar"],
        organizations: &[],
    },
    Country {
        code: "SO",
        alpha3: "SOM",
        dial: "252",
        trunk: "0",
        mobile: &[("61", 7), ("62", 7), ("63", 7), ("65", 7)],
        cities: &["Mogadishu", "Hargeisa", "Kismayo"],
        organizations: &[],
    },
    Country {
        code: "UA",
        alpha3: "UKR",
        dial: "380",
        trunk: "0",
        mobile: &[
            ("50", 7),
            ("63", 7),
            ("67", 7),
            ("68", 7),
            ("93", 7),
            ("95", 7),
            ("97", 7),
            ("99", 7),
        ],
        cities: &["Kyiv", "Kharkiv", "Odesa", "Lviv", "Dnipro"],
        organizations: &[],
    },
    Country {
        code: "RU",
        alpha3: "RUS",
        dial: "7",
        trunk: "8",
        mobile: &[("9", 9)],
        cities: &["Moscow", "Saint Petersburg", "Kazan"],
        organizations: &[],
    },
    Country {
        code: "TR",
        alpha3: "TUR",
        dial: "90",
        trunk: "0",
        mobile: &[("50", 8), ("53", 8), ("54", 8), ("55", 8)],
        cities: &["Istanbul", "Gaziantep", "İzmir", "Şanlıurfa"],
        organizations: &["gaziantep-field-clinic", "istanbul-migrant-health"],
    },
    Country {
        code: "NG",
        alpha3: "NGA",
        dial: "234",
        trunk: "0",
        mobile: &[("803", 7), ("806", 7), ("813", 7), ("703", 7), ("905", 7)],
        cities: &["Lagos", "Kano", "Benin City", "Abuja"],
        organizations: &[],
    },
    Country {
        code: "GN",
        alpha3: "GIN",
        dial: "224",
        trunk: "",
        mobile: &[("62", 7), ("65", 7), ("66", 7)],
        cities: &["Conakry", "Kankan", "Labé"],
        organizations: &[],
    },
    Country {
        code: "VE",
        alpha3: "VEN",
        dial: "58",
        trunk: "0",
        mobile: &[("412", 7), ("414", 7), ("416", 7), ("424", 7), ("426", 7)],
        cities: &["Caracas", "Maracaibo", "Valencia"],
        organizations: &[],
    },
    Country {
        code: "CO",
        alpha3: "COL",
        dial: "57",
        trunk: "",
        mobile: &[("300", 7), ("310", 7), ("311", 7), ("315", 7), ("320", 7)],
        cities: &["Bogotá", "Medellín", "Cali"],
        organizations: &[],
    },
    Country {
        code: "HN",
        alpha3: "HND",
        dial: "504",
        trunk: "",
        mobile: &[("3", 7), ("8", 7), ("9", 7)],
        cities: &["Tegucigalpa", "San Pedro Sula"],
        organizations: &[],
    },
    Country {
        code: "SV",
        alpha3: "SLV",
        dial: "503",
        trunk: "",
        mobile: &[("6", 7), ("7", 7)],
        cities: &["San Salvador", "Santa Ana"],
        organizations: &[],
    },
    Country {
        code: "VN",
        alpha3: "VNM",
        dial: "84",
        trunk: "0",
        mobile: &[
            ("90", 7),
            ("91", 7),
            ("97", 7),
            ("98", 7),
            ("35", 7),
            ("86", 7),
        ],
        cities: &["Hà Nội", "Hồ Chí Minh", "Hải Phòng"],
        organizations: &[],
    },
    Country {
        code: "DE",
        alpha3: "DEU",
        dial: "49",
        trunk: "0",
        mobile: &[
            ("151", 8),
            ("152", 8),
            ("157", 8),
            ("160", 7),
            ("170", 7),
            ("171", 7),
            ("176", 8),
        ],
        cities: &["Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main"],
        organizations: &[
            "berlin-mitte-clinic",
            "hamburg-refugee-health",
            "munich-ngo-clinic",
        ],
    },
    Country {
        code: "FR",
        alpha3: "FRA",
        dial: "33",
        trunk: "0",
        mobile: &[("6", 8), ("7", 8)],
        cities: &["Paris", "Marseille", "Lyon", "Calais"],
        organizations: &[
            "paris-nord-health-centre",
            "marseille-port-clinic",
            "calais-field-clinic",
        ],
    },
    Country {
        code: "IT",
        alpha3: "ITA",
        dial: "39",
        trunk: "",
        mobile: &[
            ("320", 7),
            ("333", 7),
            ("340", 7),
            ("347", 7),
            ("380", 7),
            ("391", 7),
        ],
        cities: &["Roma", "Milano", "Palermo", "Lampedusa", "Torino"],
        organizations: &[
            "lampedusa-first-aid",
            "rome-migrant-health",
            "milan-community-clinic",
        ],
    },
    Country {
        code: "PL",
        alpha3: "POL",
        dial: "48",
        trunk: "",
        mobile: &[
            ("50", 7),
            ("51", 7),
            ("53", 7),
            ("60", 7),
            ("66", 7),
            ("69", 7),
            ("72", 7),
            ("79", 7),
            ("88", 7),
        ],
        cities: &["Warszawa", "Kraków", "Wrocław", "Przemyśl"],
        organizations: &["warsaw-city-hospital", "przemysl-border-clinic"],
    },
    Country {
        code: "GR",
        alpha3: "GRC",
        dial: "30",
        trunk: "",
        mobile: &[
            ("690", 7),
            ("693", 7),
            ("694", 7),
            ("697", 7),
            ("698", 7),
            ("699", 7),
        ],
        cities: &["Athens", "Thessaloniki", "Mytilene", "Samos"],
        organizations: &[
            "lesvos-field-clinic",
            "athens-ngo-clinic",
            "thessaloniki-health-centre",
        ],
    },
    Country {
        code: "ES",
        alpha3: "ESP",
        dial: "34",
        trunk: "",
        mobile: &[("6", 8), ("722", 6)],
        cities: &["Madrid", "Barcelona", "Málaga", "Almería"],
        organizations: &["madrid-community-clinic", "almeria-port-clinic"],
    },
    Country {
        code: "SE",
        alpha3: "SWE",
        dial: "46",
        trunk: "0",
        mobile: &[("70", 7), ("72", 7), ("73", 7), ("76", 7)],
        cities: &["Stockholm", "Göteborg", "Malmö"],
        organizations: &["malmo-health-centre", "stockholm-migrant-clinic"],
    },
    Country {
        code: "NL",
        alpha3: "NLD",
        dial: "31",
        trunk: "0",
        mobile: &[("6", 8)],
        cities: &["Amsterdam", "Rotterdam", "Ter Apel"],
        organizations: &["ter-apel-reception-clinic", "amsterdam-gp-network"],
    },
    Country {
        code: "JO",
        alpha3: "JOR",
        dial: "962",
        trunk: "0",
        mobile: &[("77", 7), ("78", 7), ("79", 7)],
        cities: &["Amman", "Irbid", "Mafraq"],
        organizations: &["amman-ngo-clinic", "mafraq-field-clinic"],
    },
    Country {
        code: "LB",
        alpha3: "LBN",
        dial: "961",
        trunk: "0",
        mobile: &[("3", 6), ("70", 6), ("71", 6), ("76", 6), ("81", 6)],
        cities: &["Beirut", "Tripoli", "Zahlé"],
        organizations: &["beirut-ngo-clinic", "bekaa-mobile-clinic"],
    },
];

/// The origin groups, with their share of the population.
const ORIGINS: &[Origin] = &[
    Origin {
        label: "Syrian",
        weight: 14,
        script: ScriptKind::NonLatin,
        male_share: 0.56,
        nationalities: &[("SY", 1)],
        born_elsewhere: (0.05, &[("LB", 1), ("JO", 1), ("IQ", 1)]),
        hosts: &[
            ("TR", 25),
            ("DE", 25),
            ("LB", 12),
            ("JO", 10),
            ("SE", 8),
            ("NL", 6),
            ("GR", 6),
            ("FR", 4),
            ("IT", 4),
        ],
        male: ARABIC_MALE,
        female: ARABIC_FEMALE,
        family: SYRIAN_FAMILY,
        second_given: (0.3, Second::Father),
        double_family: 0.0,
        particles: Some(LEVANT),
        passport: 0.4,
        unhcr: 0.45,
    },
    Origin {
        label: "Iraqi",
        weight: 7,
        script: ScriptKind::NonLatin,
        male_share: 0.58,
        nationalities: &[("IQ", 1)],
        born_elsewhere: (0.04, &[("SY", 1), ("IR", 1)]),
        hosts: &[
            ("DE", 30),
            ("TR", 15),
            ("SE", 12),
            ("NL", 10),
            ("GR", 10),
            ("JO", 10),
            ("FR", 8),
            ("IT", 5),
        ],
        male: ARABIC_MALE,
        female: ARABIC_FEMALE,
        family: IRAQI_FAMILY,
        second_given: (0.35, Second::Father),
        double_family: 0.0,
        particles: Some(LEVANT),
        passport: 0.4,
        unhcr: 0.35,
    },
    Origin {
        label: "Sudanese",
        weight: 5,
        script: ScriptKind::NonLatin,
        male_share: 0.7,
        nationalities: &[("SD", 1)],
        born_elsewhere: (0.05, &[("EG", 1), ("ET", 1)]),
        hosts: &[
            ("FR", 25),
            ("IT", 25),
            ("DE", 15),
            ("GR", 10),
            ("NL", 10),
            ("JO", 10),
            ("ES", 5),
        ],
        male: ARABIC_MALE,
        female: ARABIC_FEMALE,
        family: SUDANESE_FAMILY,
        second_given: (0.45, Second::Father),
        double_family: 0.0,
        particles: Some(NILE),
        passport: 0.3,
        unhcr: 0.45,
    },
    Origin {
        label: "Egyptian",
        weight: 4,
        script: ScriptKind::NonLatin,
        male_share: 0.75,
        nationalities: &[("EG", 1)],
        born_elsewhere: (0.02, &[("SD", 1)]),
        hosts: &[("IT", 35), ("FR", 20), ("GR", 20), ("DE", 15), ("ES", 10)],
        male: ARABIC_MALE,
        female: ARABIC_FEMALE,
        family: EGYPTIAN_FAMILY,
        second_given: (0.4, Second::Father),
        double_family: 0.0,
        particles: Some(NILE),
        passport: 0.5,
        unhcr: 0.1,
    },
    Origin {
        label: "Persian/Dari",
        weight: 8,
        script: ScriptKind::NonLatin,
        male_share: 0.6,
        nationalities: &[("AF", 70), ("IR", 30)],
        born_elsewhere: (0.15, &[("IR", 2), ("PK", 1)]),
        hosts: &[
            ("DE", 30),
            ("TR", 20),
            ("GR", 15),
            ("SE", 10),
            ("FR", 10),
            ("NL", 5),
            ("IT", 5),
            ("ES", 5),
        ],
        male: PERSIAN_MALE,
        female: PERSIAN_FEMALE,
        family: PERSIAN_FAMILY,
        second_given: (0.25, Second::Father),
        double_family: 0.0,
        particles: None,
        passport: 0.3,
        unhcr: 0.35,
    },
    Origin {
        label: "Pashto",
        weight: 5,
        script: ScriptKind::NonLatin,
        male_share: 0.68,
        nationalities: &[("AF", 1)],
        born_elsewhere: (0.2, &[("PK", 3), ("IR", 1)]),
        hosts: &[
            ("DE", 30),
            ("GR", 20),
            ("FR", 15),
            ("TR", 15),
            ("IT", 10),
            ("SE", 10),
        ],
        male: PASHTO_MALE,
        female: PASHTO_FEMALE,
        family: PASHTO_FAMILY,
        second_given: (0.25, Second::Father),
        double_family: 0.0,
        particles: None,
        passport: 0.25,
        unhcr: 0.35,
    },
    Origin {
        label: "Eritrean/Ethiopian",
        weight: 9,
        script: ScriptKind::NonLatin,
        male_share: 0.6,
        nationalities: &[("ER", 55), ("ET", 45)],
        born_elsewhere: (0.1, &[("ET", 2), ("SD", 1)]),
        hosts: &[
            ("DE", 25),
            ("IT", 20),
            ("NL", 15),
            ("SE", 15),
            ("FR", 10),
            ("GR", 10),
            ("ES", 5),
        ],
        male: HABESHA_MALE,
        female: HABESHA_FEMALE,
        family: HABESHA_FAMILY,
        second_given: (0.1, Second::Father),
        double_family: 0.0,
        particles: None,
        passport: 0.25,
        unhcr: 0.45,
    },
    Origin {
        label: "Somali",
        weight: 6,
        script: ScriptKind::LatinNative,
        male_share: 0.55,
        nationalities: &[("SO", 1)],
        born_elsewhere: (0.1, &[("ET", 2), ("KE", 1)]),
        hosts: &[
            ("SE", 25),
            ("NL", 15),
            ("DE", 15),
            ("IT", 15),
            ("FR", 10),
            ("TR", 10),
            ("ES", 5),
            ("GR", 5),
        ],
        male: SOMALI_MALE,
        female: SOMALI_FEMALE,
        family: SOMALI_FAMILY,
        second_given: (0.5, Second::Father),
        double_family: 0.0,
        particles: None,
        passport: 0.25,
        unhcr: 0.45,
    },
    Origin {
        label: "Ukrainian",
        weight: 7,
        script: ScriptKind::NonLatin,
        male_share: 0.35,
        nationalities: &[("UA", 1)],
        born_elsewhere: (0.05, &[("RU", 1)]),
        hosts: &[
            ("PL", 35),
            ("DE", 35),
            ("IT", 10),
            ("ES", 10),
            ("FR", 5),
            ("NL", 5),
        ],
        male: UKRAINIAN_MALE,
        female: UKRAINIAN_FEMALE,
        family: UKRAINIAN_FAMILY,
        second_given: (0.0, Second::SameGender),
        double_family: 0.0,
        particles: None,
        passport: 0.6,
        unhcr: 0.05,
    },
    Origin {
        label: "Russian",
        weight: 3,
        script: ScriptKind::NonLatin,
        male_share: 0.5,
        nationalities: &[("RU", 1)],
        born_elsewhere: (0.05, &[("UA", 1)]),
        hosts: &[
            ("DE", 40),
            ("TR", 15),
            ("FR", 15),
            ("ES", 10),
            ("IT", 10),
            ("GR", 10),
        ],
        male: RUSSIAN_MALE,
        female: RUSSIAN_FEMALE,
        family: RUSSIAN_FAMILY,
        second_given: (0.0, Second::SameGender),
        double_family: 0.0,
        particles: None,
        passport: 0.6,
        unhcr: 0.05,
    },
    Origin {
        label: "Turkish",
        weight: 4,
        script: ScriptKind::LatinNative,
        male_share: 0.55,
        nationalities: &[("TR", 1)],
        born_elsewhere: (0.05, &[("DE", 1)]),
        hosts: &[("DE", 60), ("FR", 15), ("NL", 15), ("SE", 5), ("IT", 5)],
        male: TURKISH_MALE,
        female: TURKISH_FEMALE,
        family: TURKISH_FAMILY,
        second_given: (0.1, Second::SameGender),
        double_family: 0.0,
        particles: None,
        passport: 0.4,
        unhcr: 0.05,
    },
    Origin {
        label: "Kurdish",
        weight: 3,
        script: ScriptKind::LatinNative,
        male_share: 0.6,
        nationalities: &[("TR", 50), ("IQ", 30), ("SY", 20)],
        born_elsewhere: (0.05, &[("IR", 1)]),
        hosts: &[
            ("DE", 40),
            ("SE", 15),
            ("FR", 15),
            ("NL", 10),
            ("GR", 10),
            ("TR", 10),
        ],
        male: KURDISH_MALE,
        female: KURDISH_FEMALE,
        family: KURDISH_FAMILY,
        second_given: (0.1, Second::Father),
        double_family: 0.0,
        particles: None,
        passport: 0.35,
        unhcr: 0.3,
    },
    Origin {
        label: "Nigerian",
        weight: 4,
        script: ScriptKind::Latin,
        male_share: 0.55,
        nationalities: &[("NG", 1)],
        born_elsewhere: (0.02, &[("GN", 1)]),
        hosts: &[
            ("IT", 40),
            ("DE", 15),
            ("ES", 15),
            ("FR", 10),
            ("GR", 10),
            ("NL", 10),
        ],
        male: NIGERIAN_MALE,
        female: NIGERIAN_FEMALE,
        family: NIGERIAN_FAMILY,
        second_given: (0.15, Second::SameGender),
        double_family: 0.0,
        particles: None,
        passport: 0.45,
        unhcr: 0.1,
    },
    Origin {
        label: "Guinean",
        weight: 4,
        script: ScriptKind::LatinNative,
        male_share: 0.75,
        nationalities: &[("GN", 1)],
        born_elsewhere: (0.05, &[("NG", 1)]),
        hosts: &[("FR", 45), ("IT", 25), ("ES", 15), ("DE", 10), ("NL", 5)],
        male: GUINEAN_MALE,
        female: GUINEAN_FEMALE,
        family: GUINEAN_FAMILY,
        second_given: (0.15, Second::Father),
        double_family: 0.0,
        particles: None,
        passport: 0.3,
        unhcr: 0.15,
    },
    Origin {
        label: "Latin American",
        weight: 7,
        script: ScriptKind::LatinNative,
        male_share: 0.48,
        nationalities: &[("VE", 40), ("CO", 30), ("HN", 15), ("SV", 15)],
        born_elsewhere: (0.05, &[("CO", 1), ("VE", 1)]),
        hosts: &[("ES", 70), ("IT", 15), ("FR", 5), ("DE", 5), ("NL", 5)],
        male: SPANISH_MALE,
        female: SPANISH_FEMALE,
        family: SPANISH_FAMILY,
        second_given: (0.55, Second::SameGender),
        double_family: 0.75,
        particles: None,
        passport: 0.55,
        unhcr: 0.1,
    },
    Origin {
        label: "Vietnamese",
        weight: 3,
        script: ScriptKind::LatinNative,
        male_share: 0.5,
        nationalities: &[("VN", 1)],
        born_elsewhere: (0.0, &[("VN", 1)]),
        hosts: &[
            ("DE", 40),
            ("FR", 30),
            ("PL", 15),
            ("NL", 5),
            ("SE", 5),
            ("IT", 5),
        ],
        male: VIETNAMESE_MALE,
        female: VIETNAMESE_FEMALE,
        family: VIETNAMESE_FAMILY,
        second_given: (
            0.85,
            Second::Middle {
                male: VIETNAMESE_MIDDLE_MALE,
                female: VIETNAMESE_MIDDLE_FEMALE,
            },
        ),
        double_family: 0.0,
        particles: None,
        passport: 0.5,
        unhcr: 0.02,
    },
    Origin {
        label: "German",
        weight: 2,
        script: ScriptKind::LatinNative,
        male_share: 0.5,
        nationalities: &[("DE", 1)],
        born_elsewhere: (0.03, &[("PL", 1), ("TR", 1)]),
        hosts: &[("DE", 1)],
        male: GERMAN_MALE,
        female: GERMAN_FEMALE,
        family: GERMAN_FAMILY,
        second_given: (0.2, Second::SameGender),
        double_family: 0.0,
        particles: None,
        passport: 0.15,
        unhcr: 0.0,
    },
    Origin {
        label: "French",
        weight: 1,
        script: ScriptKind::LatinNative,
        male_share: 0.5,
        nationalities: &[("FR", 1)],
        born_elsewhere: (0.03, &[("DE", 1), ("IT", 1)]),
        hosts: &[("FR", 1)],
        male: FRENCH_MALE,
        female: FRENCH_FEMALE,
        family: FRENCH_FAMILY,
        second_given: (0.25, Second::SameGender),
        double_family: 0.0,
        particles: None,
        passport: 0.15,
        unhcr: 0.0,
    },
    Origin {
        label: "Italian",
        weight: 1,
        script: ScriptKind::LatinNative,
        male_share: 0.5,
        nationalities: &[("IT", 1)],
        born_elsewhere: (0.03, &[("DE", 1), ("FR", 1)]),
        hosts: &[("IT", 1)],
        male: ITALIAN_MALE,
        female: ITALIAN_FEMALE,
        family: ITALIAN_FAMILY,
        second_given: (0.15, Second::SameGender),
        double_family: 0.0,
        particles: None,
        passport: 0.15,
        unhcr: 0.0,
    },
    Origin {
        label: "Polish",
        weight: 1,
        script: ScriptKind::LatinNative,
        male_share: 0.5,
        nationalities: &[("PL", 1)],
        born_elsewhere: (0.03, &[("UA", 1), ("DE", 1)]),
        hosts: &[("PL", 1)],
        male: POLISH_MALE,
        female: POLISH_FEMALE,
        family: POLISH_FAMILY,
        second_given: (0.2, Second::SameGender),
        double_family: 0.0,
        particles: None,
        passport: 0.15,
        unhcr: 0.0,
    },
    Origin {
        label: "Greek",
        weight: 1,
        script: ScriptKind::NonLatin,
        male_share: 0.5,
        nationalities: &[("GR", 1)],
        born_elsewhere: (0.03, &[("DE", 1)]),
        hosts: &[("GR", 1)],
        male: GREEK_MALE,
        female: GREEK_FEMALE,
        family: GREEK_FAMILY,
        second_given: (0.1, Second::SameGender),
        double_family: 0.0,
        particles: None,
        passport: 0.15,
        unhcr: 0.0,
    },
];

// --- Arabic: Syrian, Iraqi, Sudanese, Egyptian ---

/// Arabic men's names, most common first.
const ARABIC_MALE: &[Name] = &[
    n(
        "محمد",
        &[
            "Mohammed", "Muhammad", "Mohamed", "Mohammad", "Mohamad", "Muhammed",
        ],
    ),
    n("أحمد", &["Ahmed", "Ahmad"]),
    n("علي", &["Ali"]),
    n("محمود", &["Mahmoud", "Mahmud", "Mahmood"]),
    n(
        "عبد الله",
        &["Abdullah", "Abdallah", "Abdulla", "Abd Allah"],
    ),
    n("عمر", &["Omar", "Umar"]),
    n("خالد", &["Khaled", "Khalid"]),
    n("حسن", &["Hassan", "Hasan"]),
    n("حسين", &["Hussein", "Hussain", "Husein", "Hossein"]),
    n("يوسف", &["Youssef", "Yousef", "Yusuf", "Yousif"]),
    n("إبراهيم", &["Ibrahim", "Ebrahim", "Brahim"]),
    n("مصطفى", &["Mustafa", "Moustafa", "Mostafa"]),
    n(
        "عبد الرحمن",
        &[
            "Abdul Rahman",
            "Abdulrahman",
            "Abdelrahman",
            "Abd al-Rahman",
            "Abdalrahman",
        ],
    ),
    n("سعيد", &["Said", "Saeed", "Saied"]),
    n("عادل", &["Adel", "Adil"]),
    n("طارق", &["Tarek", "Tariq", "Tarik"]),
    n("ياسر", &["Yasser", "Yaser", "Yasir"]),
    n("سامي", &["Sami", "Samy"]),
    n("كريم", &["Karim", "Kareem"]),
    n("فادي", &["Fadi", "Fady"]),
    n("رامي", &["Rami", "Ramy"]),
    n("جمال", &["Jamal", "Gamal", "Djamal"]),
    n("حمزة", &["Hamza", "Hamzah"]),
    n("عثمان", &["Osman", "Othman", "Uthman"]),
    n("إسماعيل", &["Ismail", "Ismael", "Esmail"]),
    n("زياد", &["Ziad", "Ziyad", "Zeyad"]),
    n("نبيل", &["Nabil", "Nabeel"]),
    n("وليد", &["Walid", "Waleed"]),
    n("باسل", &["Bassel", "Basel", "Basil"]),
    n("عبد العزيز", &["Abdulaziz", "Abdul Aziz", "Abdelaziz"]),
    n("أيمن", &["Ayman", "Aiman"]),
    n("ماهر", &["Maher"]),
    n("حيدر", &["Haidar", "Hayder", "Haider"]),
    n("عباس", &["Abbas"]),
    n("أنس", &["Anas"]),
    n("بلال", &["Bilal", "Belal"]),
];

/// Arabic women's names, most common first.
const ARABIC_FEMALE: &[Name] = &[
    n("فاطمة", &["Fatima", "Fatma", "Fatimah", "Fatmeh"]),
    n("مريم", &["Mariam", "Maryam", "Mariem", "Meryem"]),
    n("عائشة", &["Aisha", "Aicha", "Aysha", "Ayesha"]),
    n("زينب", &["Zainab", "Zeinab", "Zaynab"]),
    n("نور", &["Nour", "Noor", "Nur"]),
    n("خديجة", &["Khadija", "Khadidja", "Khadeeja"]),
    n("سارة", &["Sara", "Sarah"]),
    n("آمنة", &["Amina", "Amna", "Aminah"]),
    n("هدى", &["Huda", "Hoda", "Houda"]),
    n("رنا", &["Rana"]),
    n("ليلى", &["Layla", "Leila", "Laila"]),
    n("سلمى", &["Salma", "Selma"]),
    n("ياسمين", &["Yasmin", "Yasmine", "Jasmin"]),
    n("رشا", &["Rasha"]),
    n("هبة", &["Heba", "Hiba"]),
    n("دعاء", &["Doaa", "Duaa", "Doa"]),
    n("أسماء", &["Asmaa", "Asma"]),
    n("رغد", &["Raghad"]),
    n("حنان", &["Hanan"]),
    n("سعاد", &["Souad", "Suad", "Soad"]),
    n("إيمان", &["Iman", "Eman", "Imane"]),
    n("رقية", &["Ruqayya", "Roqaya", "Rukia"]),
    n("شيماء", &["Shaimaa", "Shaima", "Chaimae"]),
    n("نادية", &["Nadia", "Nadiya"]),
    n("لينا", &["Lina", "Leena"]),
    n("هالة", &["Hala"]),
    n("أمل", &["Amal"]),
    n("وفاء", &["Wafaa", "Wafa"]),
    n("رهف", &["Rahaf"]),
    n("بتول", &["Batoul", "Batool", "Batul"]),
];

/// Syrian family names.
const SYRIAN_FAMILY: &[Name] = &[
    al("حسن", &["Hassan", "Hasan"]),
    al("أحمد", &["Ahmad", "Ahmed"]),
    al("خطيب", &["Khatib", "Khateeb"]),
    al("حلبي", &["Halabi"]),
    al("شامي", &["Shami"]),
    n("حداد", &["Haddad"]),
    al("حمصي", &["Homsi", "Hemsi"]),
    al("زعبي", &["Zoubi", "Zubi", "Zoabi"]),
    n("قباني", &["Kabbani", "Qabbani"]),
    al("علي", &["Ali"]),
    al("خليل", &["Khalil"]),
    n("سليمان", &["Suleiman", "Sulaiman", "Sleiman"]),
    n("درويش", &["Darwish", "Darwich", "Derwish"]),
    n("يونس", &["Younes", "Yunus", "Younis"]),
    n("عثمان", &["Othman", "Osman"]),
    n("نجار", &["Najjar", "Najar", "Nadjar"]),
    al("موسى", &["Moussa", "Musa"]),
    al("عبدالله", &["Abdullah", "Abdallah"]),
    al("حمد", &["Hamad"]),
    n("قاسم", &["Kassem", "Qasim", "Kasem"]),
    n("إبراهيم", &["Ibrahim"]),
    n("حمدان", &["Hamdan"]),
    al("جاسم", &["Jasem", "Jassim"]),
    al("شيخ", &["Sheikh", "Cheikh", "Shaikh"]),
    n("أبو زيد", &["Abu Zaid", "Abou Zeid", "Abuzaid", "Abu Zeid"]),
    n("عيسى", &["Issa", "Eissa", "Isa"]),
    n("كردي", &["Kurdi"]),
    n("سعيد", &["Saeed", "Said"]),
];

/// Iraqi family and tribal names.
const IRAQI_FAMILY: &[Name] = &[
    al("جبوري", &["Jubouri", "Jaburi", "Juboori"]),
    al("تميمي", &["Tamimi"]),
    al("دليمي", &["Dulaimi", "Dulaymi"]),
    al("عبيدي", &["Obaidi", "Ubaidi"]),
    al("ساعدي", &["Saadi"]),
    al("ربيعي", &["Rubaie", "Rubaye", "Rubaiy"]),
    al("شمري", &["Shammari", "Shamari"]),
    al("كبيسي", &["Kubaisi", "Kubaysi"]),
    al("زبيدي", &["Zubaidi", "Zobaidi"]),
    al("عزاوي", &["Azzawi", "Azawi"]),
    n("حسين", &["Hussein", "Hussain"]),
    n("جاسم", &["Jasim", "Jassim", "Jasem"]),
    n("كاظم", &["Kadhim", "Kazem", "Kadhem"]),
    n("عبد الكريم", &["Abdulkarim", "Abdul Karim", "Abdelkarim"]),
    al("موسوي", &["Musawi", "Moussawi"]),
    al("حسيني", &["Husseini", "Hussaini"]),
    n("عباس", &["Abbas"]),
    n("علي", &["Ali"]),
    al("خفاجي", &["Khafaji"]),
    al("عاني", &["Ani"]),
    n("محمد", &["Mohammed", "Muhammad"]),
    n("صالح", &["Saleh", "Salih"]),
];

/// Sudanese family names (mostly a father's or grandfather's name).
const SUDANESE_FAMILY: &[Name] = &[
    n("عثمان", &["Osman", "Othman"]),
    n("آدم", &["Adam", "Adem"]),
    n("عبد الله", &["Abdalla", "Abdallah", "Abdullah"]),
    n("إدريس", &["Idris", "Idriss", "Edris"]),
    n("بشير", &["Bashir", "Basheer"]),
    al("طيب", &["Tayeb", "Tayyib"]),
    al("نور", &["Nour", "Nur"]),
    n("محجوب", &["Mahjoub", "Mahgoub"]),
    n("حامد", &["Hamid", "Hamed"]),
    n("إسحاق", &["Ishag", "Ishaq", "Ishak"]),
    n("يعقوب", &["Yagoub", "Yaqub", "Yacoub"]),
    n("موسى", &["Musa", "Mousa", "Moussa"]),
    n("بابكر", &["Babiker", "Babikir"]),
    n("عبد الرحيم", &["Abdelrahim", "Abdulrahim", "Abdel Rahim"]),
    n("محمد", &["Mohamed", "Mohammed"]),
    n("أحمد", &["Ahmed"]),
    n("علي", &["Ali"]),
    n("حسن", &["Hassan", "Hasan"]),
    al("أمين", &["Amin", "Amein"]),
    n("عمر", &["Omer", "Omar"]),
    n("صديق", &["Siddig", "Siddiq", "Seddik"]),
    al("فاضل", &["Fadil", "Fadel"]),
];

/// Egyptian family names, with some Maghrebi ben and Levantine abu names.
const EGYPTIAN_FAMILY: &[Name] = &[
    al("مصري", &["Masri", "Masry"]),
    n(
        "عبد الفتاح",
        &["Abdel Fattah", "Abdelfattah", "Abdul Fattah"],
    ),
    al("سيد", &["Sayed", "Sayyed"]),
    n("حسني", &["Hosny", "Husni"]),
    n("شحاتة", &["Shehata", "Shihata"]),
    n("فرج", &["Farag", "Faraj"]),
    n("منصور", &["Mansour", "Mansur"]),
    n("سالم", &["Salem", "Salim"]),
    n("جاد", &["Gad", "Jad"]),
    al("شريف", &["Sherif", "Sharif"]),
    n("رمضان", &["Ramadan", "Ramadhan"]),
    n("أبو زيد", &["Abou Zeid", "Abu Zaid", "Abouzeid"]),
    n("بن يوسف", &["Ben Youssef", "Benyoussef", "Bin Yousef"]),
    n("عبد الحميد", &["Abdel Hamid", "Abdelhamid", "Abdul Hamid"]),
    n("محمد", &["Mohamed", "Mohammed"]),
    n("أحمد", &["Ahmed"]),
    n("إبراهيم", &["Ibrahim"]),
    n("مصطفى", &["Mostafa", "Mustafa"]),
    al("نجار", &["Naggar", "Najjar"]),
    n("سعد", &["Saad"]),
    n("عبد الله", &["Abdallah", "Abdalla"]),
    n("حسن", &["Hassan"]),
    n("بن علي", &["Ben Ali", "Benali", "Bin Ali"]),
];

// --- Persian and Dari (Afghanistan, Iran) ---

/// Persian and Dari men's names.
const PERSIAN_MALE: &[Name] = &[
    n("محمد", &["Mohammad", "Mohammed", "Muhammad", "Mohamad"]),
    n("علی", &["Ali"]),
    n("احمد", &["Ahmad", "Ahmed"]),
    n("حسین", &["Hossein", "Hussain", "Hussein", "Hosein"]),
    n("رضا", &["Reza", "Raza"]),
    n("مهدی", &["Mahdi", "Mehdi"]),
    n("عبدالله", &["Abdullah", "Abdollah"]),
    n("امیر", &["Amir"]),
    n("علیرضا", &["Alireza", "Ali Reza"]),
    n("محمدرضا", &["Mohammadreza", "Mohammad Reza"]),
    n("سعید", &["Saeed", "Saeid", "Said"]),
    n("حمید", &["Hamid", "Hameed"]),
    n("مجید", &["Majid", "Majeed"]),
    n("داوود", &["Davood", "Davoud", "Dawood", "Dawud"]),
    n("جاوید", &["Javid", "Jawid", "Javed"]),
    n("فرید", &["Farid", "Fareed"]),
    n("نجیب", &["Najib", "Najeeb"]),
    n("وحید", &["Vahid", "Wahid", "Waheed"]),
    n("ناصر", &["Naser", "Nasir", "Nasser"]),
    n("رحیم", &["Rahim", "Raheem"]),
    n("کریم", &["Karim", "Kareem"]),
    n("شفیق", &["Shafiq", "Shafigh"]),
    n("قادر", &["Qadir", "Ghader", "Kadir"]),
    n("سید", &["Sayed", "Seyed", "Syed"]),
    n("مرتضی", &["Morteza", "Murtaza"]),
    n("مصطفی", &["Mostafa", "Mustafa"]),
    n("یوسف", &["Yousef", "Yusuf", "Yousuf"]),
    n("حسن", &["Hassan", "Hasan"]),
];

/// Persian and Dari women's names.
const PERSIAN_FEMALE: &[Name] = &[
    n("فاطمه", &["Fatemeh", "Fatima", "Fatemah"]),
    n("زهرا", &["Zahra", "Zahraa"]),
    n("مریم", &["Maryam", "Mariam"]),
    n("معصومه", &["Masoumeh", "Masuma", "Masooma"]),
    n("سکینه", &["Sakineh", "Sakina"]),
    n("زینب", &["Zeynab", "Zainab"]),
    n("شکریه", &["Shukria", "Shokria"]),
    n("پروین", &["Parvin", "Parwin", "Parveen"]),
    n("نرگس", &["Narges", "Nargis"]),
    n("فریبا", &["Fariba"]),
    n("نسرین", &["Nasrin", "Nasreen"]),
    n("لیلا", &["Leila", "Laila", "Layla"]),
    n("ثریا", &["Soraya", "Suraya"]),
    n("حمیده", &["Hamideh", "Hamida"]),
    n("شبنم", &["Shabnam"]),
    n("مینا", &["Mina", "Meena"]),
    n("رحیمه", &["Rahima", "Rahimeh"]),
    n("فرزانه", &["Farzaneh", "Farzana"]),
    n("سارا", &["Sara", "Sarah"]),
    n("شیرین", &["Shirin", "Sherin"]),
    n("نازنین", &["Nazanin"]),
    n("الهام", &["Elham"]),
    n("آمنه", &["Amena", "Amina"]),
    n("طاهره", &["Tahereh", "Tahira"]),
];

/// Persian and Dari family names.
const PERSIAN_FAMILY: &[Name] = &[
    n("احمدی", &["Ahmadi"]),
    n("محمدی", &["Mohammadi", "Muhammadi"]),
    n("حیدری", &["Haidari", "Heydari", "Haydari"]),
    n("رحیمی", &["Rahimi", "Raheemi"]),
    n("حسینی", &["Hosseini", "Husaini", "Hussaini"]),
    n("کریمی", &["Karimi"]),
    n("نوری", &["Noori", "Nouri", "Nuri"]),
    n("صدیقی", &["Sediqi", "Siddiqui", "Sadiqi"]),
    n("هاشمی", &["Hashimi", "Hashemi"]),
    n("عزیزی", &["Azizi"]),
    n("امیری", &["Amiri"]),
    n("سلطانی", &["Sultani", "Soltani"]),
    n("نظری", &["Nazari"]),
    n("قادری", &["Qaderi", "Ghaderi", "Qadiri"]),
    n("رسولی", &["Rasuli", "Rasouli"]),
    n("جعفری", &["Jafari", "Jaafari"]),
    n("رضایی", &["Rezaei", "Rezaee", "Rezaie"]),
    n("موسوی", &["Mousavi", "Musavi"]),
    n("صادقی", &["Sadeghi", "Sadeqi"]),
    n("کاظمی", &["Kazemi", "Kazimi"]),
    n("قاسمی", &["Ghasemi", "Qasemi"]),
    n("جلالی", &["Jalali"]),
    n("شریفی", &["Sharifi"]),
    n("غفوری", &["Ghafoori", "Ghafuri"]),
    n("یعقوبی", &["Yaqubi", "Yaghoubi", "Yakubi"]),
    n("سادات", &["Sadat"]),
    n("نیازی", &["Niazi"]),
];

// --- Pashto (Afghanistan) ---

/// Pashtun men's names.
const PASHTO_MALE: &[Name] = &[
    n("محمد", &["Mohammad", "Muhammad", "Mohammed"]),
    n("احمد", &["Ahmad"]),
    n("عبدالله", &["Abdullah", "Abdulla"]),
    n("ګل", &["Gul", "Gol"]),
    n("زلمی", &["Zalmai", "Zalmay"]),
    n("میرویس", &["Mirwais", "Mirways"]),
    n("اجمل", &["Ajmal"]),
    n("اسدالله", &["Asadullah", "Asadulla"]),
    n("حکمت", &["Hekmat", "Hikmat"]),
    n("نجیب", &["Najib", "Najeeb"]),
    n("ولی", &["Wali", "Vali"]),
    n("عمر", &["Omar", "Umar"]),
    n("خالد", &["Khalid", "Khaled"]),
    n("جمال", &["Jamal"]),
    n("نور", &["Noor", "Nur"]),
    n("ایمل", &["Aimal", "Emal"]),
    n("اسماعیل", &["Ismail", "Esmail"]),
    n("یوسف", &["Yousuf", "Yusuf"]),
    n("نصیر", &["Naseer", "Nasir"]),
    n("حمید", &["Hamid"]),
    n("فضل", &["Fazal", "Fazl"]),
    n("شاه", &["Shah"]),
    n("بریالی", &["Baryalai", "Baryalay"]),
    n("سمیع", &["Sami", "Samee"]),
    n("رحمان", &["Rahman", "Rehman"]),
    n("ذبیح", &["Zabih", "Zabi"]),
];

/// Pashtun women's names.
const PASHTO_FEMALE: &[Name] = &[
    n("فاطمه", &["Fatima", "Fatema"]),
    n("ملالۍ", &["Malalai", "Malali"]),
    n("زرغونه", &["Zarghona", "Zarghuna"]),
    n("ګلالۍ", &["Gulalai", "Gulalay"]),
    n("پلوشه", &["Palwasha"]),
    n("سپوږمۍ", &["Spogmai", "Spozhmai"]),
    n("شکیلا", &["Shakila", "Shakeela"]),
    n("حلیمه", &["Halima", "Haleema"]),
    n("نازیه", &["Nazia"]),
    n("ناهید", &["Nahid", "Naheed"]),
    n("فرشته", &["Freshta", "Fereshteh", "Fereshta"]),
    n("ثمینه", &["Samina", "Sameena"]),
    n("بی بی", &["Bibi"]),
    n("مریم", &["Maryam", "Mariam"]),
    n("شبانه", &["Shabana"]),
    n("رابعه", &["Rabia", "Rabea"]),
    n("زینب", &["Zainab"]),
    n("خدیجه", &["Khadija"]),
];

/// Pashtun family and tribal names.
const PASHTO_FAMILY: &[Name] = &[
    n("خان", &["Khan"]),
    n("پوپلزی", &["Popalzai", "Popalzay"]),
    n("درانی", &["Durrani", "Durani"]),
    n("یوسفزی", &["Yousafzai", "Yusufzai", "Yousufzai"]),
    n("ستانکزی", &["Stanikzai", "Stanekzai"]),
    n("احمدزی", &["Ahmadzai", "Ahmadzay"]),
    n("نورزی", &["Noorzai", "Nurzai"]),
    n("اڅکزی", &["Achakzai", "Achekzai"]),
    n("وزیر", &["Wazir"]),
    n("خټک", &["Khattak", "Khatak"]),
    n("افریدی", &["Afridi"]),
    n("شینواری", &["Shinwari", "Shinwary"]),
    n("مومند", &["Momand", "Mohmand"]),
    n("منګل", &["Mangal"]),
    n("ځدراڼ", &["Zadran", "Dzadran"]),
    n("وردګ", &["Wardak", "Wardag"]),
    n("کاکړ", &["Kakar", "Kakkar"]),
    n("صافی", &["Safi"]),
    n("نیازی", &["Niazi"]),
    n("اندړ", &["Andar"]),
    n("لودین", &["Lodin", "Ludin"]),
    n("جلالزی", &["Jalalzai"]),
];

// --- Tigrinya and Amharic (Eritrea, Ethiopia), Ge'ez script ---

/// Eritrean and Ethiopian men's names.
const HABESHA_MALE: &[Name] = &[
    n("ተስፋዬ", &["Tesfaye", "Tesfay"]),
    n("ዮሐንስ", &["Yohannes", "Yohanes", "Johannes"]),
    n("ሰለሞን", &["Solomon", "Selomon"]),
    n("ዳዊት", &["Dawit", "Dawet"]),
    n("ኃይሌ", &["Haile", "Hayle"]),
    n("ተክሌ", &["Tekle", "Tekleh"]),
    n("ብርሃነ", &["Berhane", "Birhane", "Berhana"]),
    n("ገብረመድህን", &["Gebremedhin", "Ghebremedhin", "Gebre Medhin"]),
    n("ገብረሚካኤል", &["Gebremichael", "Ghebremichael", "Gebremikael"]),
    n("ኪዳነ", &["Kidane", "Kidan"]),
    n("መሓሪ", &["Mehari", "Mehary"]),
    n("ኣማኑኤል", &["Amanuel", "Emanuel"]),
    n("ፍስሃ", &["Fisseha", "Fsaha", "Fiseha"]),
    n("ሳሙኤል", &["Samuel"]),
    n("ኤልያስ", &["Elias", "Eliyas"]),
    n("ዓወት", &["Awet"]),
    n("ያሬድ", &["Yared"]),
    n("አብርሃም", &["Abraham", "Abrham"]),
    n("መብራህቶም", &["Mebrahtom", "Mebrahtum"]),
    n("ተወልደ", &["Tewelde", "Tewolde"]),
    n("ጸጋይ", &["Tsegay", "Tsegai"]),
    n("ግርማ", &["Girma", "Ghirma"]),
    n("በረከት", &["Bereket"]),
    n("ሄኖክ", &["Henok", "Henock"]),
    n("ብሩክ", &["Biruk", "Bruk"]),
    n("ኢሳያስ", &["Isaias", "Isayas"]),
    n("ሚካኤል", &["Michael", "Mikael"]),
    n("ሓጎስ", &["Hagos"]),
    n("ቢንያም", &["Biniam", "Biniyam"]),
    n("ሙሉጌታ", &["Mulugeta"]),
];

/// Eritrean and Ethiopian women's names.
const HABESHA_FEMALE: &[Name] = &[
    n("ሰላም", &["Selam"]),
    n("ሳባ", &["Saba"]),
    n("ሄለን", &["Helen"]),
    n("ሜሮን", &["Meron"]),
    n("ሊድያ", &["Lidia", "Lydia"]),
    n("ኤልሳ", &["Elsa"]),
    n("ፊልሞና", &["Filmona"]),
    n("ሩት", &["Ruth", "Rut"]),
    n("ትርሓስ", &["Tirhas", "Terhas"]),
    n("ለተብርሃን", &["Letebrhan", "Letebrehan"]),
    n("ኣስመረት", &["Asmeret"]),
    n("ሰናይት", &["Senait", "Sennait"]),
    n("ሃና", &["Hanna", "Hana"]),
    n("ፀሐይ", &["Tsehay", "Tsehai"]),
    n("መሰረት", &["Meseret"]),
    n("ሰብለ", &["Seble", "Sebele"]),
    n("ራሄል", &["Rahel", "Rachel"]),
    n("ቤተልሄም", &["Betelhem", "Bethlehem"]),
    n("ዮርዳኖስ", &["Yordanos"]),
    n("ኤደን", &["Eden"]),
    n("ማርታ", &["Martha", "Marta"]),
    n("አልማዝ", &["Almaz"]),
    n("ትዕግስት", &["Tigist", "Tegist"]),
    n("አስቴር", &["Aster"]),
    n("አዜብ", &["Azeb"]),
    n("አበባ", &["Abeba"]),
    n("ብርኽቲ", &["Brikti", "Birikti"]),
];

/// Eritrean and Ethiopian family names: a father's given name, as these
/// countries have no inherited family names.
const HABESHA_FAMILY: &[Name] = &[
    n("ተስፋይ", &["Tesfay", "Tesfai"]),
    n("ገብረሂወት", &["Gebrehiwet", "Ghebrehiwet"]),
    n("ተክለ", &["Tekle"]),
    n("ኃይሌ", &["Haile", "Hayle"]),
    n("ኪዳነ", &["Kidane"]),
    n("መሓሪ", &["Mehari"]),
    n("ወልደማርያም", &["Woldemariam", "Weldemariam", "Woldemaryam"]),
    n("ገብረየሱስ", &["Gebreyesus", "Ghebreyesus"]),
    n("ሃብተማርያም", &["Habtemariam", "Habtemariyam"]),
    n("ዘርኣይ", &["Zerai", "Zeray"]),
    n("ተወልደ", &["Tewelde", "Tewolde"]),
    n("ሓጎስ", &["Hagos"]),
    n("ኣብርሃ", &["Abraha", "Abreha"]),
    n("በየነ", &["Beyene"]),
    n("ገብረሚካኤል", &["Gebremichael", "Ghebremichael"]),
    n("ተስፋማርያም", &["Tesfamariam", "Tesfamaryam"]),
    n("ዮሐንስ", &["Yohannes", "Yohanes"]),
    n("ሙሉጌታ", &["Mulugeta"]),
    n("ወልዱ", &["Weldu", "Woldu"]),
    n("ግርማይ", &["Girmay", "Ghirmay"]),
    n("ፍስሃ", &["Fisseha", "Fsaha"]),
    n("ብርሃነ", &["Berhane", "Birhane"]),
    n("መንግስቱ", &["Mengistu", "Mengestu"]),
    n("በቀለ", &["Bekele", "Bekela"]),
    n("ታደሰ", &["Tadesse", "Tadese"]),
    n("ደበበ", &["Debebe"]),
    n("ጌታቸው", &["Getachew", "Getachow"]),
    n("አበበ", &["Abebe"]),
    n("ከበደ", &["Kebede"]),
    n("ወርቁ", &["Worku", "Werku"]),
    n("አለሙ", &["Alemu"]),
    n("ኃይሉ", &["Hailu", "Haylu"]),
    n("ደስታ", &["Desta"]),
    n("ገብሩ", &["Gebru", "Ghebru"]),
];

// --- Somali: the native spelling is the official Somali orthography ---

/// Somali men's names.
const SOMALI_MALE: &[Name] = &[
    n("Maxamed", &["Mohamed", "Mohammed", "Muhammad"]),
    n("Cabdi", &["Abdi"]),
    n("Cali", &["Ali"]),
    n("Axmed", &["Ahmed", "Ahmad"]),
    n("Xasan", &["Hassan", "Hasan"]),
    n("Cumar", &["Omar", "Umar"]),
    n("Xuseen", &["Hussein", "Hussain"]),
    n("Yuusuf", &["Yusuf", "Yousuf"]),
    n("Ibraahim", &["Ibrahim"]),
    n("Cismaan", &["Osman", "Ismaan"]),
    n("Faarax", &["Farah", "Faarah"]),
    n("Maxamuud", &["Mohamud", "Mahmoud", "Mahmud"]),
    n("Cabdiraxmaan", &["Abdirahman", "Abdurahman"]),
    n("Cabdullaahi", &["Abdullahi", "Abdulahi"]),
    n("Aadan", &["Adan", "Aden", "Adam"]),
    n("Nuur", &["Nur", "Noor"]),
    n("Jaamac", &["Jama", "Jamac"]),
    n("Xirsi", &["Hirsi"]),
    n("Siciid", &["Said", "Saeed"]),
    n("Ismaaciil", &["Ismail"]),
    n("Bashiir", &["Bashir"]),
    n("Guuleed", &["Guled", "Gulled"]),
    n("Mukhtaar", &["Mukhtar"]),
    n("Khaalid", &["Khalid"]),
];

/// Somali women's names.
const SOMALI_FEMALE: &[Name] = &[
    n("Faadumo", &["Fadumo", "Fatuma", "Fatima"]),
    n("Khadiija", &["Khadija"]),
    n("Caasha", &["Asha", "Aisha"]),
    l(&["Hodan"]),
    l(&["Ayaan", "Ayan"]),
    n("Aamina", &["Amina"]),
    n("Maryan", &["Maryam", "Mariam"]),
    n("Xaawo", &["Hawa", "Hawo"]),
    n("Fartuun", &["Fartun"]),
    n("Nimco", &["Nimo"]),
    l(&["Sagal"]),
    n("Ifraax", &["Ifrah"]),
    n("Deeqa", &["Deka", "Deqa"]),
    n("Sucaad", &["Suad", "Suaad"]),
    n("Ubax", &["Ubah"]),
    l(&["Hibo"]),
    l(&["Filsan"]),
    l(&["Idil"]),
    l(&["Muna"]),
    n("Xamdi", &["Hamdi"]),
    n("Saynab", &["Zainab", "Zeinab"]),
];

/// Somali family names (a father's or grandfather's name).
const SOMALI_FAMILY: &[Name] = &[
    n("Maxamed", &["Mohamed", "Mohammed"]),
    n("Cali", &["Ali"]),
    n("Axmed", &["Ahmed"]),
    n("Xasan", &["Hassan", "Hasan"]),
    n("Cabdi", &["Abdi"]),
    l(&["Warsame"]),
    n("Faarax", &["Farah"]),
    n("Jaamac", &["Jama"]),
    n("Cismaan", &["Osman"]),
    n("Aadan", &["Aden", "Adan"]),
    n("Yuusuf", &["Yusuf"]),
    n("Nuur", &["Nur", "Noor"]),
    n("Xuseen", &["Hussein"]),
    n("Ibraahim", &["Ibrahim"]),
    n("Maxamuud", &["Mohamud", "Mahmoud"]),
    n("Cumar", &["Omar"]),
    l(&["Shire"]),
    n("Xirsi", &["Hirsi"]),
    n("Guuleed", &["Guled"]),
    l(&["Samatar"]),
    n("Cigaal", &["Egal", "Igal"]),
    n("Ducaale", &["Dualeh", "Duale"]),
    n("Geedi", &["Gedi"]),
    n("Cilmi", &["Elmi"]),
    n("Warfaa", &["Warfa"]),
    n("Xaashi", &["Hashi"]),
    n("Diiriye", &["Dirie", "Diriye"]),
];

// --- Ukrainian and Russian, Cyrillic ---

/// Ukrainian men's names, with Ukrainian, Russian and German
/// transliterations.
const UKRAINIAN_MALE: &[Name] = &[
    n(
        "Олександр",
        &[
            "Oleksandr",
            "Olexandr",
            "Aleksandr",
            "Alexander",
            "Oleksander",
        ],
    ),
    n("Андрій", &["Andrii", "Andriy", "Andrij", "Andrey"]),
    n("Сергій", &["Serhii", "Serhiy", "Sergii", "Sergey"]),
    n("Дмитро", &["Dmytro", "Dmitro", "Dmitry"]),
    n(
        "Володимир",
        &["Volodymyr", "Volodimir", "Vladimir", "Wolodymyr"],
    ),
    n("Іван", &["Ivan", "Iwan"]),
    n("Михайло", &["Mykhailo", "Mykhaylo", "Mikhail", "Michailo"]),
    n("Максим", &["Maksym", "Maksim", "Maxim"]),
    n("Юрій", &["Yurii", "Yuriy", "Iurii", "Juri"]),
    n("Віктор", &["Viktor", "Victor", "Wiktor"]),
    n("Олег", &["Oleh", "Oleg"]),
    n("Тарас", &["Taras"]),
    n("Богдан", &["Bohdan", "Bogdan"]),
    n("Василь", &["Vasyl", "Vasil", "Wasyl"]),
    n("Петро", &["Petro"]),
    n("Микола", &["Mykola", "Nikolai", "Mikola"]),
    n("Артем", &["Artem", "Artom", "Artyom"]),
    n("Денис", &["Denys", "Denis"]),
    n("Євген", &["Yevhen", "Ievgen", "Evgeniy", "Yevgen"]),
    n("Роман", &["Roman"]),
    n("Ігор", &["Ihor", "Igor"]),
    n("Віталій", &["Vitalii", "Vitaliy", "Vitaly"]),
];

/// Ukrainian women's names.
const UKRAINIAN_FEMALE: &[Name] = &[
    n("Олена", &["Olena", "Elena", "Helena"]),
    n("Тетяна", &["Tetiana", "Tetyana", "Tatiana", "Tatjana"]),
    n("Наталія", &["Nataliia", "Natalia", "Natalya", "Natalija"]),
    n("Ірина", &["Iryna", "Irina"]),
    n("Юлія", &["Yuliia", "Yulia", "Iuliia", "Julia"]),
    n("Оксана", &["Oksana"]),
    n("Анна", &["Anna", "Hanna"]),
    n("Марія", &["Mariia", "Maria", "Mariya"]),
    n("Світлана", &["Svitlana", "Svetlana", "Swetlana"]),
    n("Людмила", &["Liudmyla", "Lyudmyla", "Ludmila"]),
    n("Катерина", &["Kateryna", "Katerina", "Ekaterina"]),
    n("Вікторія", &["Viktoriia", "Viktoria", "Victoria"]),
    n("Ольга", &["Olha", "Olga"]),
    n("Галина", &["Halyna", "Galina", "Halina"]),
    n("Дарина", &["Daryna", "Darina"]),
    n("Софія", &["Sofiia", "Sofia", "Sofiya"]),
    n("Анастасія", &["Anastasiia", "Anastasia", "Anastasiya"]),
    n("Валентина", &["Valentyna", "Valentina", "Walentyna"]),
    n("Надія", &["Nadiia", "Nadiya", "Nadia"]),
    n("Інна", &["Inna"]),
];

/// Ukrainian family names (these do not inflect by gender).
const UKRAINIAN_FAMILY: &[Name] = &[
    n("Шевченко", &["Shevchenko", "Schewtschenko", "Szewczenko"]),
    n("Коваленко", &["Kovalenko", "Kowalenko"]),
    n("Бондаренко", &["Bondarenko"]),
    n("Ткаченко", &["Tkachenko", "Tkatschenko", "Tkaczenko"]),
    n("Кравченко", &["Kravchenko", "Krawtschenko", "Krawczenko"]),
    n("Коваль", &["Koval", "Kowal"]),
    n("Олійник", &["Oliinyk", "Oliynyk", "Oleynik"]),
    n("Шевчук", &["Shevchuk", "Szewczuk"]),
    n("Поліщук", &["Polishchuk", "Polischuk", "Poliszczuk"]),
    n("Бойко", &["Boiko", "Boyko", "Bojko"]),
    n("Ткачук", &["Tkachuk", "Tkaczuk"]),
    n("Мельник", &["Melnyk", "Melnik"]),
    n("Савченко", &["Savchenko", "Sawtschenko"]),
    n("Руденко", &["Rudenko"]),
    n("Марченко", &["Marchenko", "Martschenko"]),
    n("Мороз", &["Moroz", "Moros"]),
    n("Лисенко", &["Lysenko", "Lisenko"]),
    n("Петренко", &["Petrenko"]),
    n("Кузьменко", &["Kuzmenko"]),
    n("Павленко", &["Pavlenko", "Pawlenko"]),
    n("Левченко", &["Levchenko", "Lewtschenko"]),
    n("Клименко", &["Klymenko", "Klimenko"]),
    n("Гончаренко", &["Honcharenko", "Goncharenko"]),
    n("Харченко", &["Kharchenko", "Chartschenko"]),
    n("Сидоренко", &["Sydorenko", "Sidorenko"]),
    n("Романенко", &["Romanenko"]),
];

/// Russian men's names.
const RUSSIAN_MALE: &[Name] = &[
    n("Александр", &["Aleksandr", "Alexander", "Alexandr"]),
    n("Сергей", &["Sergey", "Sergei", "Sergej"]),
    n("Дмитрий", &["Dmitry", "Dmitriy", "Dmitrii"]),
    n("Андрей", &["Andrey", "Andrei", "Andrej"]),
    n("Алексей", &["Alexey", "Aleksei", "Alexei"]),
    n("Иван", &["Ivan", "Iwan"]),
    n("Михаил", &["Mikhail", "Michail"]),
    n("Николай", &["Nikolay", "Nikolai"]),
    n("Владимир", &["Vladimir", "Wladimir"]),
    n("Евгений", &["Evgeny", "Yevgeny", "Evgenii"]),
    n("Максим", &["Maksim", "Maxim"]),
    n("Артём", &["Artyom", "Artem"]),
    n("Павел", &["Pavel", "Pawel"]),
    n("Игорь", &["Igor"]),
    n("Юрий", &["Yury", "Yuri", "Juri"]),
];

/// Russian women's names.
const RUSSIAN_FEMALE: &[Name] = &[
    n("Елена", &["Elena", "Yelena", "Jelena"]),
    n("Татьяна", &["Tatiana", "Tatyana", "Tatjana"]),
    n("Наталья", &["Natalya", "Natalia", "Natalja"]),
    n("Ольга", &["Olga"]),
    n("Екатерина", &["Ekaterina", "Yekaterina", "Jekaterina"]),
    n("Мария", &["Maria", "Mariya"]),
    n("Анна", &["Anna"]),
    n("Светлана", &["Svetlana", "Swetlana"]),
    n("Ирина", &["Irina"]),
    n("Юлия", &["Yulia", "Julia", "Yuliya"]),
    n("Анастасия", &["Anastasia", "Anastasiya"]),
    n("Ксения", &["Ksenia", "Kseniya", "Xenia"]),
];

/// Russian family names, with the feminine forms women bear.
const RUSSIAN_FAMILY: &[Name] = &[
    nf(
        Some("Иванов"),
        &["Ivanov", "Iwanow"],
        Some("Иванова"),
        &["Ivanova", "Iwanowa"],
    ),
    nf(
        Some("Смирнов"),
        &["Smirnov", "Smirnow"],
        Some("Смирнова"),
        &["Smirnova", "Smirnowa"],
    ),
    nf(
        Some("Кузнецов"),
        &["Kuznetsov", "Kusnezow", "Kuznecov"],
        Some("Кузнецова"),
        &["Kuznetsova", "Kusnezowa", "Kuznecova"],
    ),
    nf(
        Some("Попов"),
        &["Popov", "Popow"],
        Some("Попова"),
        &["Popova", "Popowa"],
    ),
    nf(
        Some("Васильев"),
        &["Vasilyev", "Vasiliev", "Wassiljew"],
        Some("Васильева"),
        &["Vasilyeva", "Vasilieva", "Wassiljewa"],
    ),
    nf(
        Some("Петров"),
        &["Petrov", "Petrow"],
        Some("Петрова"),
        &["Petrova", "Petrowa"],
    ),
    nf(
        Some("Соколов"),
        &["Sokolov", "Sokolow"],
        Some("Соколова"),
        &["Sokolova", "Sokolowa"],
    ),
    nf(
        Some("Михайлов"),
        &["Mikhailov", "Mikhaylov", "Michailow"],
        Some("Михайлова"),
        &["Mikhailova", "Mikhaylova", "Michailowa"],
    ),
    nf(
        Some("Новиков"),
        &["Novikov", "Nowikow"],
        Some("Новикова"),
        &["Novikova", "Nowikowa"],
    ),
    nf(
        Some("Фёдоров"),
        &["Fedorov", "Fyodorov", "Fjodorow"],
        Some("Фёдорова"),
        &["Fedorova", "Fyodorova", "Fjodorowa"],
    ),
    nf(
        Some("Морозов"),
        &["Morozov", "Morosow"],
        Some("Морозова"),
        &["Morozova", "Morosowa"],
    ),
    nf(
        Some("Волков"),
        &["Volkov", "Wolkow"],
        Some("Волкова"),
        &["Volkova", "Wolkowa"],
    ),
    nf(
        Some("Лебедев"),
        &["Lebedev", "Lebedew"],
        Some("Лебедева"),
        &["Lebedeva", "Lebedewa"],
    ),
    nf(
        Some("Козлов"),
        &["Kozlov", "Koslow"],
        Some("Козлова"),
        &["Kozlova", "Koslowa"],
    ),
    nf(
        Some("Соловьёв"),
        &["Solovyov", "Soloviev", "Solowjow"],
        Some("Соловьёва"),
        &["Solovyova", "Solovieva", "Solowjowa"],
    ),
];

// --- Turkish and Kurdish: the native spelling has the letters a foreign
// keyboard lacks ---

/// Turkish men's names.
const TURKISH_MALE: &[Name] = &[
    l(&["Mehmet"]),
    l(&["Mustafa"]),
    l(&["Ahmet"]),
    l(&["Ali"]),
    n("Hüseyin", &["Huseyin", "Hueseyin"]),
    l(&["Hasan"]),
    n("İbrahim", &["Ibrahim"]),
    n("İsmail", &["Ismail"]),
    l(&["Osman"]),
    l(&["Yusuf"]),
    l(&["Murat"]),
    n("Ömer", &["Omer", "Oemer"]),
    l(&["Ramazan"]),
    l(&["Emre"]),
    l(&["Burak"]),
    l(&["Kemal"]),
    l(&["Halil"]),
    n("Süleyman", &["Suleyman", "Sueleyman"]),
    l(&["Recep"]),
    l(&["Fatih"]),
    n("Uğur", &["Ugur"]),
    n("Gökhan", &["Gokhan", "Goekhan"]),
    n("Barış", &["Baris"]),
];

/// Turkish women's names.
const TURKISH_FEMALE: &[Name] = &[
    l(&["Fatma"]),
    n("Ayşe", &["Ayse", "Aysche"]),
    l(&["Emine"]),
    l(&["Hatice"]),
    l(&["Zeynep"]),
    l(&["Elif"]),
    l(&["Meryem"]),
    n("Şerife", &["Serife"]),
    l(&["Sultan"]),
    l(&["Hanife"]),
    n("Özlem", &["Ozlem", "Oezlem"]),
    l(&["Leyla"]),
    n("Gülsüm", &["Gulsum", "Guelsuem"]),
    n("Büşra", &["Busra", "Buesra"]),
    l(&["Merve"]),
    n("Şeyma", &["Seyma"]),
    l(&["Esra"]),
    l(&["Aysel"]),
    n("Gül", &["Gul", "Guel"]),
];

/// Turkish family names.
const TURKISH_FAMILY: &[Name] = &[
    n("Yılmaz", &["Yilmaz"]),
    l(&["Kaya"]),
    l(&["Demir"]),
    n("Şahin", &["Sahin"]),
    n("Çelik", &["Celik"]),
    n("Yıldız", &["Yildiz"]),
    n("Yıldırım", &["Yildirim"]),
    n("Öztürk", &["Ozturk", "Oeztuerk"]),
    n("Aydın", &["Aydin"]),
    n("Özdemir", &["Ozdemir", "Oezdemir"]),
    l(&["Arslan"]),
    n("Doğan", &["Dogan"]),
    n("Kılıç", &["Kilic"]),
    l(&["Aslan"]),
    n("Çetin", &["Cetin"]),
    l(&["Kara"]),
    n("Koç", &["Koc"]),
    l(&["Kurt"]),
    n("Özkan", &["Ozkan", "Oezkan"]),
    n("Şimşek", &["Simsek"]),
    l(&["Polat"]),
    l(&["Korkmaz"]),
    n("Erdoğan", &["Erdogan"]),
    n("Güneş", &["Gunes", "Guenes"]),
];

/// Kurdish men's names in Kurmanji spelling, and common Turkish ones.
const KURDISH_MALE: &[Name] = &[
    l(&["Mehmet"]),
    l(&["Ahmet"]),
    l(&["Azad"]),
    l(&["Baran"]),
    l(&["Mustafa"]),
    l(&["Zana"]),
    l(&["Serhat"]),
    n("Şivan", &["Sivan", "Shivan"]),
    n("Rêber", &["Reber", "Rebar"]),
    l(&["Diyar"]),
    l(&["Hejar"]),
    l(&["Rojhat"]),
    l(&["Welat", "Velat"]),
    l(&["Berzan"]),
    n("Dilşad", &["Dilsad", "Dilshad"]),
    l(&["Ali"]),
    n("Hüseyin", &["Huseyin"]),
    l(&["Hasan"]),
    l(&["Kawa", "Kaveh"]),
];

/// Kurdish women's names.
const KURDISH_FEMALE: &[Name] = &[
    l(&["Berivan"]),
    l(&["Dilan"]),
    l(&["Rojda"]),
    l(&["Fatma"]),
    l(&["Zozan"]),
    l(&["Nazdar"]),
    n("Hêlîn", &["Helin"]),
    l(&["Gulistan", "Gulestan"]),
    n("Jînda", &["Jinda"]),
    l(&["Rojin"]),
    n("Hêvî", &["Hevi"]),
    l(&["Nesrin", "Nasrin"]),
    l(&["Leyla"]),
    n("Ayşe", &["Ayse"]),
    l(&["Zeynep"]),
    l(&["Newroz", "Nevroz"]),
];

/// Kurdish family names: Turkish surnames of Kurds in Turkey, and tribal
/// names of Kurds from Iraq and Syria.
const KURDISH_FAMILY: &[Name] = &[
    l(&["Demir"]),
    n("Yıldız", &["Yildiz"]),
    l(&["Kaya"]),
    n("Aydın", &["Aydin"]),
    l(&["Aslan"]),
    l(&["Barzani"]),
    n("Çelik", &["Celik"]),
    l(&["Zebari"]),
    l(&["Tekin"]),
    n("Ateş", &["Ates"]),
    l(&["Amedi", "Amadi"]),
    l(&["Doski"]),
    l(&["Berwari"]),
    l(&["Akbulut"]),
    n("Güzel", &["Guzel", "Guezel"]),
    l(&["Ekinci"]),
    l(&["Hawrami"]),
    n("Tunç", &["Tunc"]),
    l(&["Kurdi"]),
    l(&["Mizuri", "Mizouri"]),
];

// --- West African: Nigeria, Guinea ---

/// Nigerian men's names (Yoruba, Igbo, Hausa, Christian).
const NIGERIAN_MALE: &[Name] = &[
    l(&["Mohammed", "Muhammad", "Muhammed"]),
    l(&["Ibrahim"]),
    l(&["Emmanuel"]),
    l(&["Chinedu"]),
    l(&["Emeka"]),
    l(&["Oluwaseun", "Seun"]),
    l(&["Adebayo"]),
    l(&["Musa", "Moussa"]),
    l(&["Abubakar", "Abubakr", "Aboubakar"]),
    l(&["Chukwuemeka"]),
    l(&["Olumide"]),
    l(&["Babatunde", "Tunde"]),
    l(&["Uchenna", "Uche"]),
    l(&["Ifeanyi"]),
    l(&["Obinna"]),
    l(&["Olusegun", "Segun"]),
    l(&["Yusuf", "Yusuff"]),
    l(&["Aliyu"]),
    l(&["Samuel"]),
    l(&["Daniel"]),
    l(&["Godwin"]),
    l(&["Sani"]),
    l(&["Kelechi"]),
    l(&["Victor"]),
    l(&["Friday"]),
];

/// Nigerian women's names.
const NIGERIAN_FEMALE: &[Name] = &[
    l(&["Blessing"]),
    l(&["Fatima", "Fatimah"]),
    l(&["Aisha", "Aishat"]),
    l(&["Chioma"]),
    l(&["Ngozi"]),
    l(&["Grace"]),
    l(&["Adaeze"]),
    l(&["Funmilayo", "Funmi"]),
    l(&["Folake"]),
    l(&["Zainab", "Zainabu"]),
    l(&["Joy"]),
    l(&["Chiamaka", "Amaka"]),
    l(&["Nneka"]),
    l(&["Yetunde"]),
    l(&["Bukola"]),
    l(&["Precious"]),
    l(&["Esther"]),
    l(&["Hauwa"]),
    l(&["Halima", "Halimat"]),
    l(&["Oluwakemi", "Kemi"]),
    l(&["Favour"]),
    l(&["Peace"]),
];

/// Nigerian family names.
const NIGERIAN_FAMILY: &[Name] = &[
    l(&["Okafor"]),
    l(&["Mohammed", "Muhammad"]),
    l(&["Okonkwo"]),
    l(&["Adeyemi"]),
    l(&["Ibrahim"]),
    l(&["Eze"]),
    l(&["Bello"]),
    l(&["Adebayo"]),
    l(&["Ogunleye"]),
    l(&["Nwosu"]),
    l(&["Okoro"]),
    l(&["Abubakar"]),
    l(&["Usman", "Othman"]),
    l(&["Olawale"]),
    l(&["Ogundipe"]),
    l(&["Chukwu"]),
    l(&["Obi"]),
    l(&["Okeke"]),
    l(&["Nwachukwu"]),
    l(&["Oladipo"]),
    l(&["Balogun"]),
    l(&["Adeleke"]),
    l(&["Ojo"]),
    l(&["Danjuma"]),
    l(&["Yakubu"]),
    l(&["Lawal"]),
];

/// Guinean men's names (Fula, Malinke, Susu), in French spelling with
/// English-style variants.
const GUINEAN_MALE: &[Name] = &[
    l(&["Mamadou", "Mamadu"]),
    l(&["Ibrahima", "Ibrahim"]),
    l(&["Amadou", "Ahmadou", "Amadu"]),
    l(&["Alpha"]),
    l(&["Ousmane", "Usman", "Ousman"]),
    l(&["Boubacar", "Aboubacar", "Bubakar"]),
    l(&["Abdoulaye", "Abdulai", "Abdoulay"]),
    l(&["Mohamed", "Mohammed"]),
    l(&["Souleymane", "Sulayman", "Souleimane"]),
    n("Sékou", &["Sekou"]),
    l(&["Lamine", "Alamine"]),
    l(&["Moussa", "Musa"]),
    l(&["Oumar", "Umar"]),
    l(&["Thierno", "Tierno"]),
    l(&["Mamadi"]),
    n("Fodé", &["Fode"]),
    l(&["Alseny"]),
    l(&["Sidiki"]),
];

/// Guinean women's names.
const GUINEAN_FEMALE: &[Name] = &[
    l(&["Fatoumata", "Fatumata", "Fatimata"]),
    l(&["Mariama", "Mariame"]),
    n("Aïssatou", &["Aissatou", "Aisatu"]),
    l(&["Kadiatou", "Kadiatu"]),
    l(&["Hawa"]),
    l(&["Aminata", "Aminatou"]),
    l(&["Fanta"]),
    l(&["Mabinty"]),
    n("Djénabou", &["Djenabou", "Jenabu"]),
    l(&["Oumou", "Umu"]),
    l(&["Hadja"]),
    l(&["Binta"]),
    n("Néné", &["Nene"]),
    l(&["Ramatoulaye", "Ramatu"]),
    l(&["Saran"]),
];

/// Guinean family names.
const GUINEAN_FAMILY: &[Name] = &[
    l(&["Diallo", "Jallo", "Jalloh"]),
    l(&["Barry", "Bari"]),
    l(&["Bah", "Ba"]),
    l(&["Camara", "Kamara"]),
    l(&["Sow"]),
    n("Condé", &["Conde"]),
    n("Keïta", &["Keita"]),
    n("Touré", &["Toure"]),
    l(&["Sylla", "Silla"]),
    l(&["Bangoura", "Bangura"]),
    l(&["Soumah", "Sumah", "Souma"]),
    n("Cissé", &["Cisse"]),
    l(&["Kourouma"]),
    n("Baldé", &["Balde", "Baldeh"]),
    n("Traoré", &["Traore"]),
    l(&["Doumbouya", "Dumbuya"]),
    l(&["Kaba"]),
    n("Koné", &["Kone"]),
    l(&["Fofana"]),
    n("Kanté", &["Kante"]),
    n("Sidibé", &["Sidibe"]),
    n("Konaté", &["Konate"]),
];

// --- Latin American: Spanish with and without accents ---

/// Latin American men's names.
const SPANISH_MALE: &[Name] = &[
    n("José", &["Jose"]),
    l(&["Juan"]),
    l(&["Luis"]),
    l(&["Carlos"]),
    n("Jesús", &["Jesus"]),
    l(&["Miguel"]),
    l(&["Jorge"]),
    l(&["Pedro"]),
    l(&["Francisco"]),
    l(&["Manuel"]),
    l(&["Antonio"]),
    l(&["David"]),
    l(&["Daniel"]),
    l(&["Alejandro"]),
    n("Andrés", &["Andres"]),
    l(&["Diego"]),
    l(&["Santiago"]),
    n("Ángel", &["Angel"]),
    l(&["Javier"]),
    l(&["Rafael"]),
    l(&["Ricardo"]),
    l(&["Fernando"]),
    l(&["Wilmer"]),
    l(&["Kevin"]),
    l(&["Brayan", "Bryan"]),
];

/// Latin American women's names.
const SPANISH_FEMALE: &[Name] = &[
    n("María", &["Maria"]),
    l(&["Ana"]),
    l(&["Carmen"]),
    l(&["Luisa"]),
    l(&["Gabriela"]),
    l(&["Daniela"]),
    l(&["Valentina"]),
    l(&["Andrea"]),
    l(&["Carolina"]),
    l(&["Paola"]),
    l(&["Yesenia", "Yessenia"]),
    l(&["Karla", "Carla"]),
    l(&["Rosa"]),
    l(&["Laura"]),
    l(&["Marisol"]),
    n("Sofía", &["Sofia"]),
    l(&["Camila"]),
    l(&["Alejandra"]),
    l(&["Mariana"]),
    l(&["Yuliana", "Juliana"]),
    n("Génesis", &["Genesis"]),
    l(&["Fernanda"]),
];

/// Spanish family names; a person usually bears two.
const SPANISH_FAMILY: &[Name] = &[
    n("García", &["Garcia"]),
    n("Rodríguez", &["Rodriguez"]),
    n("González", &["Gonzalez"]),
    n("Hernández", &["Hernandez"]),
    n("López", &["Lopez"]),
    n("Martínez", &["Martinez"]),
    n("Pérez", &["Perez"]),
    n("Sánchez", &["Sanchez"]),
    n("Ramírez", &["Ramirez"]),
    l(&["Torres"]),
    l(&["Flores"]),
    l(&["Rivera"]),
    n("Gómez", &["Gomez"]),
    n("Díaz", &["Diaz"]),
    l(&["Morales"]),
    l(&["Vargas"]),
    l(&["Castillo"]),
    n("Jiménez", &["Jimenez"]),
    l(&["Romero"]),
    l(&["Herrera"]),
    l(&["Medina"]),
    l(&["Aguilar"]),
    l(&["Rojas"]),
    l(&["Mendoza"]),
    l(&["Castro"]),
    n("Suárez", &["Suarez"]),
    n("Gutiérrez", &["Gutierrez"]),
    n("Chávez", &["Chavez"]),
    l(&["Ruiz"]),
    l(&["Ortiz"]),
];

// --- Vietnamese: the native spelling has the tone marks ---

/// Vietnamese men's given names.
const VIETNAMESE_MALE: &[Name] = &[
    l(&["Anh"]),
    l(&["Minh"]),
    n("Hùng", &["Hung"]),
    n("Dũng", &["Dung"]),
    n("Tuấn", &["Tuan"]),
    l(&["Nam"]),
    l(&["Long"]),
    n("Hải", &["Hai"]),
    n("Sơn", &["Son"]),
    l(&["Huy"]),
    n("Phúc", &["Phuc"]),
    n("Khánh", &["Khanh"]),
    n("Thắng", &["Thang"]),
    n("Đức", &["Duc"]),
    n("Quân", &["Quan"]),
    n("Bảo", &["Bao"]),
    l(&["Trung"]),
];

/// Vietnamese women's given names.
const VIETNAMESE_FEMALE: &[Name] = &[
    l(&["Linh"]),
    l(&["Lan"]),
    n("Hương", &["Huong"]),
    l(&["Hoa"]),
    l(&["Mai"]),
    l(&["Trang"]),
    n("Thảo", &["Thao"]),
    n("Ngọc", &["Ngoc"]),
    n("Hà", &["Ha"]),
    n("Phương", &["Phuong"]),
    l(&["Thu"]),
    n("Hằng", &["Hang"]),
    l(&["Nhung"]),
    l(&["Vy"]),
    n("Yến", &["Yen"]),
    n("Thủy", &["Thuy"]),
];

/// Vietnamese men's middle names.
const VIETNAMESE_MIDDLE_MALE: &[Name] = &[
    n("Văn", &["Van"]),
    n("Đức", &["Duc"]),
    l(&["Minh"]),
    l(&["Quang"]),
    n("Hữu", &["Huu"]),
    l(&["Thanh"]),
    n("Công", &["Cong"]),
];

/// Vietnamese women's middle names.
const VIETNAMESE_MIDDLE_FEMALE: &[Name] = &[
    n("Thị", &["Thi"]),
    n("Ngọc", &["Ngoc"]),
    l(&["Thanh"]),
    l(&["Thu"]),
    l(&["Minh"]),
    l(&["Kim"]),
];

/// Vietnamese family names; Nguyễn alone is borne by about a third.
const VIETNAMESE_FAMILY: &[Name] = &[
    n("Nguyễn", &["Nguyen"]),
    n("Trần", &["Tran"]),
    n("Lê", &["Le"]),
    n("Phạm", &["Pham"]),
    n("Hoàng", &["Hoang"]),
    n("Huỳnh", &["Huynh"]),
    l(&["Phan"]),
    n("Vũ", &["Vu"]),
    n("Võ", &["Vo"]),
    n("Đặng", &["Dang"]),
    n("Bùi", &["Bui"]),
    n("Đỗ", &["Do"]),
    n("Hồ", &["Ho"]),
    n("Ngô", &["Ngo"]),
    n("Dương", &["Duong"]),
    n("Lý", &["Ly"]),
];

// --- European residents ---

/// German men's names.
const GERMAN_MALE: &[Name] = &[
    l(&["Thomas"]),
    l(&["Michael"]),
    l(&["Andreas"]),
    l(&["Stefan", "Stephan"]),
    n("Jürgen", &["Juergen", "Jurgen"]),
    l(&["Peter"]),
    l(&["Klaus"]),
    l(&["Wolfgang"]),
    l(&["Markus", "Marcus"]),
    l(&["Christian"]),
    l(&["Tobias"]),
    n("Jörg", &["Joerg", "Jorg"]),
];

/// German women's names.
const GERMAN_FEMALE: &[Name] = &[
    l(&["Sabine"]),
    l(&["Petra"]),
    l(&["Anna"]),
    l(&["Julia"]),
    l(&["Katharina"]),
    l(&["Monika"]),
    l(&["Ursula"]),
    l(&["Andrea"]),
    l(&["Stefanie", "Stephanie"]),
    l(&["Lena"]),
];

/// German family names.
const GERMAN_FAMILY: &[Name] = &[
    n("Müller", &["Mueller", "Muller"]),
    l(&["Schmidt"]),
    l(&["Schneider"]),
    l(&["Fischer"]),
    l(&["Weber"]),
    l(&["Meyer", "Meier"]),
    l(&["Wagner"]),
    l(&["Becker"]),
    l(&["Schulz"]),
    l(&["Hoffmann"]),
    n("Schäfer", &["Schaefer", "Schafer"]),
    l(&["Koch"]),
    l(&["Bauer"]),
    l(&["Richter"]),
    l(&["Klein"]),
    n("Schröder", &["Schroeder", "Schroder"]),
    n("Krüger", &["Krueger", "Kruger"]),
];

/// French men's names.
const FRENCH_MALE: &[Name] = &[
    l(&["Jean"]),
    l(&["Pierre"]),
    l(&["Michel"]),
    l(&["Philippe"]),
    l(&["Nicolas"]),
    n("François", &["Francois"]),
    l(&["Julien"]),
    l(&["Olivier"]),
    n("Sébastien", &["Sebastien"]),
    n("Jérôme", &["Jerome"]),
];

/// French women's names.
const FRENCH_FEMALE: &[Name] = &[
    l(&["Marie"]),
    l(&["Nathalie"]),
    l(&["Isabelle"]),
    l(&["Sophie"]),
    n("Céline", &["Celine"]),
    n("Émilie", &["Emilie"]),
    l(&["Camille"]),
    n("Hélène", &["Helene"]),
    l(&["Claire"]),
    n("Aurélie", &["Aurelie"]),
];

/// French family names.
const FRENCH_FAMILY: &[Name] = &[
    l(&["Martin"]),
    l(&["Bernard"]),
    l(&["Dubois"]),
    l(&["Thomas"]),
    l(&["Robert"]),
    l(&["Richard"]),
    l(&["Petit"]),
    l(&["Durand"]),
    l(&["Leroy"]),
    l(&["Moreau"]),
    l(&["Simon"]),
    l(&["Laurent"]),
    n("Lefèvre", &["Lefevre", "Lefebvre"]),
    l(&["Girard"]),
    l(&["Rousseau"]),
];

/// Italian men's names.
const ITALIAN_MALE: &[Name] = &[
    l(&["Giuseppe"]),
    l(&["Marco"]),
    l(&["Luca"]),
    l(&["Giovanni"]),
    l(&["Francesco"]),
    l(&["Antonio"]),
    l(&["Alessandro"]),
    l(&["Andrea"]),
    l(&["Matteo"]),
    l(&["Lorenzo"]),
    n("Niccolò", &["Niccolo", "Nicolo"]),
];

/// Italian women's names.
const ITALIAN_FEMALE: &[Name] = &[
    l(&["Giulia"]),
    l(&["Francesca"]),
    l(&["Chiara"]),
    l(&["Sara"]),
    l(&["Maria"]),
    l(&["Anna"]),
    l(&["Martina"]),
    l(&["Federica"]),
    l(&["Valentina"]),
    l(&["Elena"]),
];

/// Italian family names.
const ITALIAN_FAMILY: &[Name] = &[
    l(&["Rossi"]),
    l(&["Russo"]),
    l(&["Ferrari"]),
    l(&["Esposito"]),
    l(&["Bianchi"]),
    l(&["Romano"]),
    l(&["Colombo"]),
    l(&["Ricci"]),
    l(&["Marino"]),
    l(&["Greco"]),
    l(&["Bruno"]),
    l(&["Gallo"]),
    l(&["Conti"]),
    l(&["De Luca", "Deluca"]),
    l(&["Costa"]),
];

/// Polish men's names.
const POLISH_MALE: &[Name] = &[
    l(&["Piotr"]),
    l(&["Krzysztof"]),
    l(&["Andrzej"]),
    l(&["Tomasz"]),
    n("Paweł", &["Pawel"]),
    n("Michał", &["Michal"]),
    n("Łukasz", &["Lukasz"]),
    l(&["Marcin"]),
    l(&["Jakub"]),
    l(&["Kamil"]),
];

/// Polish women's names.
const POLISH_FEMALE: &[Name] = &[
    l(&["Anna"]),
    l(&["Maria"]),
    l(&["Katarzyna"]),
    n("Małgorzata", &["Malgorzata"]),
    l(&["Agnieszka"]),
    l(&["Magdalena"]),
    l(&["Joanna"]),
    l(&["Aleksandra"]),
    l(&["Ewa"]),
    l(&["Monika"]),
];

/// Polish family names, with the feminine forms of those that inflect.
const POLISH_FAMILY: &[Name] = &[
    l(&["Nowak"]),
    nf(None, &["Kowalski"], None, &["Kowalska"]),
    nf(
        Some("Wiśniewski"),
        &["Wisniewski"],
        Some("Wiśniewska"),
        &["Wisniewska"],
    ),
    n("Wójcik", &["Wojcik"]),
    l(&["Kowalczyk"]),
    nf(
        Some("Kamiński"),
        &["Kaminski"],
        Some("Kamińska"),
        &["Kaminska"],
    ),
    nf(None, &["Lewandowski"], None, &["Lewandowska"]),
    nf(
        Some("Zieliński"),
        &["Zielinski"],
        Some("Zielińska"),
        &["Zielinska"],
    ),
    nf(
        Some("Szymański"),
        &["Szymanski"],
        Some("Szymańska"),
        &["Szymanska"],
    ),
    n("Woźniak", &["Wozniak"]),
    nf(
        Some("Dąbrowski"),
        &["Dabrowski"],
        Some("Dąbrowska"),
        &["Dabrowska"],
    ),
    l(&["Mazur"]),
    l(&["Krawczyk"]),
];

/// Greek men's names.
const GREEK_MALE: &[Name] = &[
    n("Γεώργιος", &["Georgios", "Giorgos", "George"]),
    n("Δημήτριος", &["Dimitrios", "Dimitris"]),
    n("Κωνσταντίνος", &["Konstantinos", "Kostas", "Constantinos"]),
    n("Ιωάννης", &["Ioannis", "Giannis", "Yannis"]),
    n("Νικόλαος", &["Nikolaos", "Nikos"]),
    n("Παναγιώτης", &["Panagiotis", "Panayiotis"]),
    n("Χρήστος", &["Christos", "Hristos"]),
    n("Αθανάσιος", &["Athanasios", "Thanasis"]),
    n("Μιχαήλ", &["Michail", "Michalis"]),
];

/// Greek women's names.
const GREEK_FEMALE: &[Name] = &[
    n("Μαρία", &["Maria"]),
    n("Ελένη", &["Eleni", "Helen"]),
    n("Αικατερίνη", &["Aikaterini", "Katerina"]),
    n("Βασιλική", &["Vasiliki", "Vaso"]),
    n("Σοφία", &["Sofia", "Sophia"]),
    n("Αγγελική", &["Angeliki"]),
    n("Γεωργία", &["Georgia"]),
    n("Δήμητρα", &["Dimitra"]),
    n("Ευαγγελία", &["Evangelia"]),
];

/// Greek family names; women bear the genitive form of those that inflect.
const GREEK_FAMILY: &[Name] = &[
    nf(
        Some("Παπαδόπουλος"),
        &["Papadopoulos"],
        Some("Παπαδοπούλου"),
        &["Papadopoulou"],
    ),
    nf(
        Some("Παπαδάκης"),
        &["Papadakis"],
        Some("Παπαδάκη"),
        &["Papadaki"],
    ),
    n("Γεωργίου", &["Georgiou"]),
    n("Οικονόμου", &["Oikonomou", "Economou"]),
    n("Νικολάου", &["Nikolaou"]),
    n("Βασιλείου", &["Vasileiou", "Vasiliou"]),
    n("Ιωάννου", &["Ioannou"]),
    n("Παπαδημητρίου", &["Papadimitriou"]),
    n("Αντωνίου", &["Antoniou"]),
    nf(Some("Μακρής"), &["Makris"], Some("Μακρή"), &["Makri"]),
    nf(Some("Πάππας"), &["Pappas"], Some("Πάππα"), &["Pappa"]),
    nf(
        Some("Καραγιάννης"),
        &["Karagiannis"],
        Some("Καραγιάννη"),
        &["Karagianni"],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// 600 people and 150 duplicates, quick enough for every test.
    fn small(seed: u64) -> Population {
        Population::generate(&Config {
            people: 600,
            duplicates: 150,
            seed,
        })
    }

    /// Every string in `value`, with its path.
    fn strings<'a>(value: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
        match value {
            Value::String(s) => out.push((path, s)),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    strings(item, format!("{path}[{i}]"), out);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    strings(item, format!("{path}.{key}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_population() {
        assert_eq!(small(11), small(11));
    }

    #[test]
    fn another_seed_gives_another_population() {
        assert_ne!(small(11).records, small(12).records);
    }

    #[test]
    fn records_are_one_per_person_plus_the_duplicates() {
        let population = small(3);
        assert_eq!(population.people, 600);
        assert_eq!(population.records.len(), 750);
        let originals: Vec<&Record> = population.records.iter().filter(|r| !r.duplicate).collect();
        assert_eq!(originals.len(), 600);
        let people: BTreeSet<usize> = originals.iter().map(|r| r.person).collect();
        assert_eq!(people.len(), 600, "each person has exactly one original");
        assert!(population.records.iter().all(|r| r.person < 600));
    }

    #[test]
    fn true_pairs_are_the_pairs_of_records_of_one_person() {
        let population = small(5);
        let pairs = population.true_pairs();
        let mut per_person: BTreeMap<usize, usize> = BTreeMap::new();
        for record in &population.records {
            *per_person.entry(record.person).or_default() += 1;
        }
        let expected: usize = per_person.values().map(|&k| k * (k - 1) / 2).sum();
        assert_eq!(pairs.len(), expected);
        assert!(
            pairs.len() >= 150,
            "every duplicate makes at least one pair"
        );
        for &(a, b) in &pairs {
            assert!(a < b);
            assert_eq!(population.records[a].person, population.records[b].person);
        }
    }

    #[test]
    fn no_people_give_an_empty_population() {
        let population = Population::generate(&Config {
            people: 0,
            duplicates: 10,
            seed: 1,
        });
        assert!(population.records.is_empty());
        assert!(population.true_pairs().is_empty());
    }

    #[test]
    fn every_record_is_a_valid_fhir_r4_patient() {
        let limits = corridor_fhir::Limits::default();
        for record in &small(7).records {
            let json = record.resource.to_string();
            if let Err(issue) = corridor_fhir::validate(&json, &["Patient"], &limits) {
                panic!("{json} is refused: {issue:?}");
            }
        }
    }

    #[test]
    fn records_have_a_name_and_no_empty_or_padded_strings() {
        for record in &small(8).records {
            let names = record.resource["name"].as_array().expect("name");
            assert!(!names.is_empty());
            let mut all = Vec::new();
            strings(&record.resource, String::new(), &mut all);
            for (path, s) in all {
                assert!(
                    !s.is_empty() && s.trim() == s && !s.contains("  "),
                    "{path} is {s:?}"
                );
            }
        }
    }

    #[test]
    fn an_mrn_names_the_organization_that_entered_the_record() {
        let population = small(9);
        let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
        for record in &population.records {
            for identifier in record.resource["identifier"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let system = identifier["system"].as_str().unwrap();
                if let Some(org) = system.strip_prefix(MRN_SYSTEM_PREFIX) {
                    assert_eq!(org, record.organization);
                    let value = identifier["value"].as_str().unwrap().to_owned();
                    assert!(
                        seen.insert((system.to_owned(), value)),
                        "MRNs are unique within an organization"
                    );
                }
            }
        }
    }

    #[test]
    fn a_duplicate_comes_from_another_organization_than_the_original() {
        let population = small(10);
        let original: BTreeMap<usize, &str> = population
            .records
            .iter()
            .filter(|r| !r.duplicate)
            .map(|r| (r.person, r.organization))
            .collect();
        for record in population.records.iter().filter(|r| r.duplicate) {
            assert_ne!(record.organization, original[&record.person]);
        }
    }

    #[test]
    fn passports_and_unhcr_numbers_are_never_shared_by_two_people() {
        let population = Population::generate(&Config::default());
        let mut owner: BTreeMap<String, usize> = BTreeMap::new();
        for record in &population.records {
            for identifier in record.resource["identifier"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let system = identifier["system"].as_str().unwrap();
                if system.starts_with(PASSPORT_SYSTEM_PREFIX) || system == UNHCR_SYSTEM {
                    let key = format!("{system}|{}", identifier["value"].as_str().unwrap());
                    let first = *owner.entry(key.clone()).or_insert(record.person);
                    assert_eq!(first, record.person, "{key} belongs to one person");
                }
            }
        }
    }

    #[test]
    fn every_corruption_occurs_and_hard_duplicates_are_a_small_share() {
        let population = Population::generate(&Config::default());
        let duplicates: Vec<&Record> = population.records.iter().filter(|r| r.duplicate).collect();
        assert_eq!(duplicates.len(), 2_000);
        for kind in Corruption::ALL {
            let count = duplicates
                .iter()
                .filter(|r| r.corruptions.contains(&kind))
                .count();
            assert!(count >= 10, "{kind:?} occurs only {count} times");
        }
        let hard = duplicates.iter().filter(|r| r.hard).count();
        assert!((100..=300).contains(&hard), "{hard} hard duplicates");
        let mean = |rs: &[&&Record]| {
            rs.iter().map(|r| r.corruptions.len()).sum::<usize>() as f64 / rs.len() as f64
        };
        let (hard, easy): (Vec<&&Record>, Vec<&&Record>) = duplicates.iter().partition(|r| r.hard);
        assert!(
            mean(&hard) > 2.0 * mean(&easy),
            "hard duplicates have many corruptions"
        );
        assert!(
            population
                .records
                .iter()
                .all(|r| r.duplicate || r.corruptions.is_empty())
        );
    }

    #[test]
    fn names_appear_in_arabic_geez_cyrillic_and_greek_script() {
        let population = Population::generate(&Config::default());
        let mut scripts = BTreeSet::new();
        for record in &population.records {
            let text = record.resource["name"].to_string();
            for c in text.chars() {
                match c {
                    '\u{0600}'..='\u{06FF}' => scripts.insert("Arabic"),
                    '\u{1200}'..='\u{137F}' => scripts.insert("Ge'ez"),
                    '\u{0400}'..='\u{04FF}' => scripts.insert("Cyrillic"),
                    '\u{0370}'..='\u{03FF}' => scripts.insert("Greek"),
                    _ => false,
                };
            }
        }
        assert_eq!(scripts.len(), 4, "{scripts:?}");
    }

    #[test]
    fn common_names_are_shared_by_people_born_the_same_year() {
        let population = Population::generate(&Config::default());
        let mut born: BTreeMap<(String, String), BTreeSet<usize>> = BTreeMap::new();
        for record in population.records.iter().filter(|r| !r.duplicate) {
            let name = &record.resource["name"][0];
            let (Some(given), Some(year)) = (
                name["given"][0].as_str(),
                record.resource["birthDate"].as_str(),
            ) else {
                continue;
            };
            let family = name["family"].as_str().unwrap_or_default();
            born.entry((format!("{given} {family}"), year[..4].to_owned()))
                .or_default()
                .insert(record.person);
        }
        let shared = born.values().filter(|people| people.len() > 1).count();
        assert!(shared >= 20, "only {shared} name and year pairs are shared");
        let mohammed = population
            .records
            .iter()
            .filter(|r| r.resource["name"].to_string().contains("Mohammed"))
            .count();
        assert!(mohammed >= 200, "Mohammed is common, not {mohammed}");
    }

    #[test]
    fn birth_dates_are_full_estimated_or_year_only() {
        let population = Population::generate(&Config::default());
        let dates: Vec<&str> = population
            .records
            .iter()
            .filter_map(|r| r.resource["birthDate"].as_str())
            .collect();
        let estimated = dates
            .iter()
            .filter(|d| d.ends_with("-01-01") || d.ends_with("-07-01"))
            .count();
        let year_only = dates.iter().filter(|d| d.len() == 4).count();
        assert!(estimated > dates.len() / 6, "{estimated} estimated");
        assert!(year_only > dates.len() / 20, "{year_only} year only");
        assert!(dates.len() < population.records.len(), "some have none");
    }

    #[test]
    fn phones_come_in_several_formats() {
        let population = Population::generate(&Config::default());
        let phones: Vec<&str> = population
            .records
            .iter()
            .filter_map(|r| r.resource["telecom"][0]["value"].as_str())
            .collect();
        assert!(phones.iter().any(|p| p.starts_with('+') && p.contains(' ')));
        assert!(
            phones
                .iter()
                .any(|p| p.starts_with('+') && !p.contains(' '))
        );
        assert!(phones.iter().any(|p| p.starts_with("00")));
        assert!(
            phones
                .iter()
                .any(|p| !p.starts_with('+') && !p.starts_with("00"))
        );
    }

    #[test]
    fn write_phone_formats_a_syrian_mobile_as_people_write_it() {
        let phone = Phone {
            country: country("SY"),
            number: "944123456".into(),
        };
        assert_eq!(write_phone(&phone, PhoneFormat::Spaced), "+963 944 123 456");
        assert_eq!(write_phone(&phone, PhoneFormat::Compact), "+963944123456");
        assert_eq!(
            write_phone(&phone, PhoneFormat::DoubleZero),
            "00963944123456"
        );
        assert_eq!(write_phone(&phone, PhoneFormat::National), "0944 123456");
    }

    #[test]
    fn arabic_family_names_take_the_article_in_every_style() {
        let name = al("حسن", &["Hassan", "Hasan"]);
        let write = |variant, native, particle| name.write(variant, native, Gender::Male, particle);
        assert_eq!(write(0, false, Particle::AlHyphen), "Al-Hassan");
        assert_eq!(write(1, false, Particle::AlJoined), "Alhasan");
        assert_eq!(write(0, false, Particle::ElSpace), "El Hassan");
        assert_eq!(write(0, false, Particle::LowerHyphen), "al-Hassan");
        assert_eq!(write(0, false, Particle::Dropped), "Hassan");
        assert_eq!(write(0, true, Particle::AlHyphen), "الحسن");
        assert_eq!(write(0, true, Particle::Dropped), "حسن");
    }

    #[test]
    fn women_bear_the_feminine_form_of_inflected_family_names() {
        let ivanov = &RUSSIAN_FAMILY[0];
        assert_eq!(
            ivanov.write(0, false, Gender::Female, Particle::Dropped),
            "Ivanova"
        );
        assert_eq!(
            ivanov.write(0, true, Gender::Female, Particle::Dropped),
            "Иванова"
        );
        assert_eq!(
            ivanov.write(0, true, Gender::Male, Particle::Dropped),
            "Иванов"
        );
    }

    #[test]
    fn every_table_is_usable() {
        for origin in ORIGINS {
            for table in [origin.male, origin.female, origin.family] {
                assert!(!table.is_empty(), "{}", origin.label);
                for name in table {
                    assert!(!name.spelling.latin.is_empty(), "{}", origin.label);
                }
            }
            for (code, _) in origin.nationalities {
                country(code);
            }
            for (code, _) in origin.hosts {
                assert!(
                    !country(code).organizations.is_empty(),
                    "{} lives in {code}, which has no organization",
                    origin.label
                );
            }
        }
    }
}
