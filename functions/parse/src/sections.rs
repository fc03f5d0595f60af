//! Splitting resume text into sections by their headings, in English, German, French,
//! Spanish, Portuguese, Dutch and Italian.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    /// Text before the first heading: name, title, contact details.
    Header,
    Summary,
    Work,
    Education,
    Skills,
    Projects,
    Certificates,
    Languages,
    Contact,
    Interests,
    Awards,
    Publications,
    Volunteer,
    References,
    /// "Additional information": whatever the writer did not file elsewhere.
    Additional,
}

/// A section of the resume as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Section {
    pub kind: SectionKind,
    /// The heading as written (empty for the header).
    pub title: String,
    pub text: String,
}

const HEADINGS: &[(SectionKind, &[&str])] = &[
    (
        SectionKind::Summary,
        &[
            "summary",
            "professional summary",
            "profile",
            "professional profile",
            "career summary",
            "about me",
            "about",
            "objective",
            "career objective",
            "personal statement",
            "executive summary",
            "overview",
            "profile overview",
            "profile summary",
            "career overview",
            "professional overview",
            "summary of qualifications",
            "qualifications summary",
            "introduction",
            "profil",
            "kurzprofil",
            "über mich",
            "zusammenfassung",
            "persönliches profil",
            "berufsprofil",
            "profil professionnel",
            "à propos",
            "à propos de moi",
            "résumé",
            "objectif",
            "objectif professionnel",
            "perfil",
            "perfil profesional",
            "resumen",
            "resumen profesional",
            "sobre mí",
            "objetivo",
            "extracto",
            "perfil profissional",
            "resumo",
            "resumo profissional",
            "sobre mim",
            "objetivo profissional",
            "profiel",
            "over mij",
            "samenvatting",
            "persoonlijk profiel",
            "profilo",
            "profilo professionale",
            "chi sono",
        ],
    ),
    (
        SectionKind::Work,
        &[
            "experience",
            "work",
            "internship",
            "work experience",
            "teaching experience",
            "leadership experience",
            "positions of responsibility",
            "research experience",
            "berufliche stationen",
            "professional experience",
            "employment",
            "employment history",
            "work history",
            "career history",
            "relevant experience",
            "experience and employment",
            "career",
            "professional background",
            "professional history",
            "positions held",
            "internships",
            "internship experience",
            "working experience",
            "work experience and internships",
            "employment record",
            "professional career",
            "industry experience",
            "experience summary",
            "berufserfahrung",
            "berufliche erfahrung",
            "beruflicher werdegang",
            "praxiserfahrung",
            "werdegang",
            "berufliche laufbahn",
            "berufspraxis",
            "erfahrung",
            "expérience",
            "expériences",
            "expérience professionnelle",
            "expériences professionnelles",
            "parcours professionnel",
            "stages",
            "experiencia",
            "experiencia laboral",
            "experiencia profesional",
            "trayectoria profesional",
            "historial laboral",
            "experiência",
            "experiência profissional",
            "experiências profissionais",
            "histórico profissional",
            "werkervaring",
            "ervaring",
            "loopbaan",
            "werkgeschiedenis",
            "arbeidsverleden",
            "relevante werkervaring",
            "esperienza",
            "esperienze",
            "esperienza lavorativa",
            "esperienze lavorative",
            "esperienza professionale",
        ],
    ),
    (
        SectionKind::Education,
        &[
            "education",
            "academic background",
            "educational qualifications",
            "educational qualification",
            "schulische ausbildung",
            "education and training",
            "qualifications",
            "academic qualifications",
            "educational background",
            "academic history",
            "studies",
            "training",
            "education & training",
            "ausbildung",
            "bildung",
            "bildungsweg",
            "studium",
            "akademischer werdegang",
            "schulbildung",
            "ausbildung und studium",
            "formation",
            "formations",
            "études",
            "parcours académique",
            "formation académique",
            "formation initiale",
            "formation continue",
            "formation complémentaire",
            "diplômes",
            "diplômes et formations",
            "educación",
            "formación",
            "formación académica",
            "estudios",
            "educação",
            "formação",
            "formação acadêmica",
            "formação académica",
            "escolaridade",
            "opleiding",
            "opleidingen",
            "onderwijs",
            "opleiding en cursussen",
            "istruzione",
            "formazione",
            "istruzione e formazione",
        ],
    ),
    (
        SectionKind::Skills,
        &[
            "skills",
            "technical skills",
            "core skills",
            "key skills",
            "skills & expertise",
            "skills and expertise",
            "core competencies",
            "competencies",
            "technologies",
            "tech stack",
            "technical expertise",
            "expertise",
            "tools",
            "tools & technologies",
            "skills & tools",
            "it skills",
            "skill set",
            "skillset",
            "technical proficiencies",
            "soft skills",
            "strengths",
            "computer skills",
            "personal skills",
            "digital skills",
            "digital competences",
            "areas of expertise",
            "abilities",
            "kenntnisse",
            "fähigkeiten",
            "fachkenntnisse",
            "it-kenntnisse",
            "edv-kenntnisse",
            "schwerpunkte",
            "kompetenzen",
            "technische kenntnisse",
            "fähigkeiten und kenntnisse",
            "skills und kenntnisse",
            "compétences",
            "compétences techniques",
            "savoir-faire",
            "habilidades",
            "competencias",
            "conocimientos",
            "aptitudes",
            "habilidades técnicas",
            "conocimientos técnicos",
            "competências",
            "conhecimentos",
            "habilidades e competências",
            "competências técnicas",
            "vaardigheden",
            "competenties",
            "kennis en vaardigheden",
            "competenze",
            "competenze tecniche",
            "capacità",
        ],
    ),
    (
        SectionKind::Projects,
        &[
            "academic projects",
            "projects undertaken",
            "projects",
            "personal projects",
            "selected projects",
            "key projects",
            "side projects",
            "open source",
            "projekte",
            "ausgewählte projekte",
            "projets",
            "projets personnels",
            "proyectos",
            "projetos",
            "projecten",
            "progetti",
        ],
    ),
    (
        SectionKind::Certificates,
        &[
            "certifications",
            "certificates",
            "licenses & certifications",
            "licenses and certifications",
            "certifications & licenses",
            "courses",
            "courses & certifications",
            "trainings",
            "professional training",
            "zertifikate",
            "zertifizierungen",
            "weiterbildung",
            "weiterbildungen",
            "fortbildungen",
            "certificats",
            "certificaciones",
            "certificados",
            "cursos",
            "certificações",
            "cursos e certificações",
            "certificaten",
            "certificeringen",
            "cursussen",
            "certificazioni",
        ],
    ),
    (
        SectionKind::Languages,
        &[
            "languages",
            "language skills",
            "languages known",
            "sprachen",
            "sprachkenntnisse",
            "langues",
            "compétences linguistiques",
            "idiomas",
            "línguas",
            "talen",
            "talenkennis",
            "lingue",
            "conoscenze linguistiche",
        ],
    ),
    (
        SectionKind::Contact,
        &[
            "contact",
            "contact information",
            "contact details",
            "personal details",
            "personal information",
            "personal",
            "eckdaten",
            "kontakt",
            "kontaktdaten",
            "persönliche daten",
            "persönliche angaben",
            "coordonnées",
            "informations personnelles",
            "contacto",
            "datos personales",
            "datos de contacto",
            "contato",
            "dados pessoais",
            "informações pessoais",
            "contactgegevens",
            "persoonlijke gegevens",
            "contatti",
            "dati personali",
        ],
    ),
    (
        SectionKind::Interests,
        &[
            "interests",
            "hobbies",
            "hobbies & interests",
            "interessen",
            "hobbys",
            "freizeit",
            "centres d'intérêt",
            "centres d’intérêt",
            "loisirs",
            "intereses",
            "aficiones",
            "interesses",
            "hobby's",
            "interesses pessoais",
            "interessi",
        ],
    ),
    (
        SectionKind::Awards,
        &[
            "awards",
            "scholastic achievements",
            "recognition",
            "honors",
            "honours",
            "achievements",
            "awards & honors",
            "auszeichnungen",
            "erfolge",
            "prix",
            "distinctions",
            "réalisations",
            "premios",
            "logros",
            "prêmios",
            "conquistas",
            "prijzen",
            "premi",
        ],
    ),
    (
        SectionKind::Publications,
        &[
            "publications",
            "writing",
            "publikationen",
            "veröffentlichungen",
            "publicaciones",
            "publicações",
            "publicaties",
            "pubblicazioni",
        ],
    ),
    (
        SectionKind::Volunteer,
        &[
            "volunteer",
            "volunteering",
            "volunteer experience",
            "service",
            "community service",
            "military service",
            "ehrenamt",
            "ehrenamtliches engagement",
            "engagement",
            "bénévolat",
            "voluntariado",
            "vrijwilligerswerk",
            "volontariato",
        ],
    ),
    (
        SectionKind::References,
        &["references", "referenzen", "références", "referencias", "referências", "referenties", "referenze"],
    ),
    (
        SectionKind::Additional,
        &[
            "additional information",
            "extracurricular activities",
            "extra-curricular activities",
            "extracurriculars",
            "declaration",
            "leadership",
            // Courses belong to a degree; as a section of their own they are a list, no entries.
            "coursework",
            "relevant coursework",
            "affiliations",
            "affiliation",
            "memberships",
            // FRESH and JSON Resume sections that hold no jobs or degrees.
            "samples",
            "reading",
            "speaking",
            "governance",
            "testimonials",
            "professional affiliations",
            "professional memberships",
            "mitgliedschaften",
            "other information",
            "further information",
            "weitere angaben",
            "sonstiges",
            "informations complémentaires",
            "divers",
            "información adicional",
            "informações adicionais",
            "aanvullende informatie",
            "overige",
            "informazioni aggiuntive",
            "altre informazioni",
        ],
    ),
];

/// Lowercase, drop decoration (`#`, `:`, bullets, surrounding punctuation), collapse
/// spaces; letter-spaced headings ("E X P E R I E N C E") are joined.
fn heading_key(line: &str) -> String {
    let t = line.trim().trim_start_matches(['#', '•', '*', '=', '-', '_', '|', '■', '▪', '►']).trim();
    let t = t.trim_end_matches([':', '：', '.', '#', '*', '=', '-', '_', '|']).trim();
    // "Experience (10 years and 5 months):" — an aside after the heading.
    let t = match t.strip_suffix(')').and_then(|r| r.rsplit_once(" (")) {
        Some((head, _)) if !head.trim().is_empty() => head.trim(),
        _ => t,
    };
    // "PROFESSIONAL_EXPERIENCE": a terminal resume's identifier style.
    let mut key = fold_accents(&t.to_lowercase().replace(['\u{2019}'], "'").replace('_', " "));
    key = key.split_whitespace().collect::<Vec<_>>().join(" ");
    let words: Vec<&str> = key.split(' ').collect();
    if words.len() >= 4 && words.iter().all(|w| w.chars().count() == 1) {
        key = words.concat();
    }
    key
}

/// Letters without their accents (NFD, combining marks dropped): a heading typed with the
/// wrong accent ("Expèriences") or none ("Experience professionnelle", "Formacion") is
/// still the same heading.
fn fold_accents(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfd().filter(|c| !unicode_normalization::char::is_combining_mark(*c)).collect()
}

/// The heading names, folded like the keys they are compared with.
static FOLDED: std::sync::LazyLock<Vec<(SectionKind, Vec<String>)>> = std::sync::LazyLock::new(|| {
    HEADINGS.iter().map(|(kind, names)| (*kind, names.iter().map(|n| fold_accents(n)).collect())).collect()
});

/// The section a line opens, if it is a heading.
pub fn heading_kind(line: &str) -> Option<SectionKind> {
    let trimmed = line.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > 60
        || trimmed.starts_with(['•', '-', '*']) && !trimmed.starts_with("##")
    {
        return None;
    }
    let key = heading_key(trimmed);
    if key.is_empty() {
        return None;
    }
    let key_and = key
        .replace(" & ", " and ")
        .replace(" und ", " and ")
        .replace(" et ", " and ")
        .replace(" y ", " and ")
        .replace(" e ", " and ")
        .replace(" en ", " and ");
    for (kind, names) in FOLDED.iter() {
        if names.iter().any(|n| *n == key || n.replace(" & ", " and ") == key_and) {
            return Some(*kind);
        }
    }
    // Combined headings: "Education & Certifications", "Skills / Languages": the first
    // part decides, or the second when the first is no heading ("Research & Projects").
    for sep in [" & ", " and ", " / ", " und ", " et ", " y ", " e ", " en ", ", "] {
        if let Some((first, second)) = key.split_once(sep) {
            // The second part only for a short heading: "… quality, assessment and
            // recognition" is a wrapped sentence.
            let parts: &[&str] = if key.split(' ').count() <= 4 { &[first, second] } else { &[first] };
            for part in parts {
                for (kind, names) in FOLDED.iter() {
                    if names.iter().any(|n| n == part.trim()) {
                        return Some(*kind);
                    }
                }
            }
        }
    }
    // "Projects I've been involved with:", "Open Source Profile:": a line that ends in a
    // colon, is short, and opens with a heading.
    if trimmed.ends_with([':', '：']) && key.split(' ').count() <= 6 {
        let words: Vec<&str> = key.split(' ').collect();
        for n in (1..words.len()).rev() {
            let prefix = words[..n].join(" ");
            for (kind, names) in FOLDED.iter() {
                if names.contains(&prefix) {
                    return Some(*kind);
                }
            }
        }
    }
    None
}

/// Split text into sections. Text before the first heading is the header section.
pub fn split(text: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut current = Section { kind: SectionKind::Header, title: String::new(), text: String::new() };
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().copied().enumerate() {
        // "Languages" over "Go, Java, Python" inside a skills section: a category label the
        // reader put on a line of its own (moderncv's label column), not the spoken languages.
        if current.kind == SectionKind::Skills
            && heading_kind(line) == Some(SectionKind::Languages)
            && lines[i + 1..].iter().find(|l| !l.trim().is_empty()).is_some_and(|n| n.contains(','))
        {
            current.text.push_str(line.trim());
            current.text.push(':');
            current.text.push(' ');
            continue;
        }
        // "Courses" under a degree (JSON Resume themes list them per entry): part of that entry.
        if current.kind == SectionKind::Education
            && matches!(
                heading_key(line).as_str(),
                "courses" | "coursework" | "relevant courses" | "relevant coursework" | "course work"
            )
        {
            current.text.push_str(line.trim());
            current.text.push('\n');
            continue;
        }
        // "Skills: Rust, Go" on one line: a one-line list section, after which the
        // section around it goes on. Only list-like kinds, never inside a skills section,
        // where "Languages: Python, Go" is a category, and no skills inside entries, where
        // "Tech Stack: Python, Java<tab>Aug 2024 - present" is a line of the job.
        let in_entries = matches!(current.kind, SectionKind::Work | SectionKind::Education | SectionKind::Projects);
        if current.kind != SectionKind::Skills
            && let Some((head, rest)) = line.split_once([':', '：'])
            && !rest.trim().is_empty()
            && let Some(kind) = heading_kind(head)
            && matches!(
                kind,
                SectionKind::Skills | SectionKind::Languages | SectionKind::Certificates | SectionKind::Interests
            )
            && !(in_entries && kind == SectionKind::Skills)
        {
            let resume_kind = current.kind;
            let resume_title = current.title.clone();
            sections.push(std::mem::replace(
                &mut current,
                Section { kind, title: head.trim().to_string(), text: rest.trim().to_string() },
            ));
            sections.push(std::mem::replace(
                &mut current,
                Section { kind: resume_kind, title: resume_title, text: String::new() },
            ));
            continue;
        }
        // "Experience<tab>PhD Research Assistant<tab>Sep 2021–Present": the heading in a label
        // column, on the row of the section's first line.
        if let Some((head, rest)) = line.split_once('\t')
            && !rest.trim().is_empty()
            && let Some(kind) = heading_kind(head)
        {
            if !(current.kind == SectionKind::Header && current.text.trim().is_empty()) {
                sections.push(current);
            }
            current = Section { kind, title: head.trim().to_string(), text: format!("{}\n", rest.trim()) };
            continue;
        }
        // "… on computational research" / "projects": a wrapped line's last word, not a heading.
        let previous = lines[..i].iter().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim());
        let prose = |p: &str| {
            let words: Vec<&str> = p.split_whitespace().collect();
            let lower = words.iter().filter(|w| w.starts_with(char::is_lowercase)).count();
            words.len() >= 6 && lower * 2 >= words.len() && !p.ends_with(['.', ':', '!', '?'])
        };
        let wrapped = line.trim().starts_with(char::is_lowercase) && previous.is_some_and(prose);
        if !wrapped && let Some(kind) = heading_kind(line) {
            if !(current.kind == SectionKind::Header && current.text.trim().is_empty()) {
                sections.push(current);
            }
            let title = line.trim().trim_start_matches('#').trim().trim_end_matches([':', '：']).trim().to_string();
            current = Section { kind, title, text: String::new() };
            continue;
        }
        current.text.push_str(line);
        current.text.push('\n');
    }
    sections.push(current);
    for s in &mut sections {
        let t = s.text.trim().to_string();
        s.text = t;
    }
    // Headings with nothing under them (and the empty remainder after a one-line
    // section) carry no content.
    sections.retain(|s| !s.text.is_empty());
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heading_with_an_aside() {
        assert_eq!(heading_kind("Experience (10 years and 5 months):"), Some(SectionKind::Work));
        assert_eq!(heading_kind("Skills (selected)"), Some(SectionKind::Skills));
        assert_eq!(heading_kind("RESEARCH & PROJECTS"), Some(SectionKind::Projects));
        assert_eq!(heading_kind("Projects I've been involved with:"), Some(SectionKind::Projects));
        assert_eq!(heading_kind("Open Source Profile:"), Some(SectionKind::Projects));
        assert_eq!(heading_kind("Projects I've been involved with"), None);
        assert_eq!(heading_kind("PROFESSIONAL_EXPERIENCE"), Some(SectionKind::Work));
    }

    #[test]
    fn headings_in_many_languages() {
        for (line, kind) in [
            ("EXPERIENCE", SectionKind::Work),
            ("Berufserfahrung:", SectionKind::Work),
            ("## Expérience professionnelle", SectionKind::Work),
            ("Experiencia Laboral", SectionKind::Work),
            ("Experiência Profissional", SectionKind::Work),
            ("Werkervaring", SectionKind::Work),
            ("Working Experience", SectionKind::Work),
            ("PROFILE OVERVIEW", SectionKind::Summary),
            ("E D U C A T I O N", SectionKind::Education),
            ("Formação Acadêmica", SectionKind::Education),
            ("Opleiding", SectionKind::Education),
            ("Kenntnisse", SectionKind::Skills),
            ("Compétences techniques", SectionKind::Skills),
            ("Skills & Tools", SectionKind::Skills),
            ("Education & Certifications", SectionKind::Education),
            ("Idiomas", SectionKind::Languages),
            ("Centres d’intérêt", SectionKind::Interests),
            // Accents typed wrong or left out, and the usual French qualifiers.
            ("Expèriences", SectionKind::Work),
            ("EXPERIENCE PROFESSIONNELLE", SectionKind::Work),
            ("Formacion academica", SectionKind::Education),
            ("Formation initiale", SectionKind::Education),
            ("Formation continue :", SectionKind::Education),
            ("Competences", SectionKind::Skills),
        ] {
            assert_eq!(heading_kind(line), Some(kind), "{line}");
        }
        for not in ["Senior Engineer at Acme", "• Experience with Rust", "Python, Go, Rust", ""] {
            assert_eq!(heading_kind(not), None, "{not}");
        }
    }

    #[test]
    fn split_keeps_header_and_titles() {
        let s = split("Jane Doe\njane@x.com\n\nEXPERIENCE\nEngineer\n\nSkills:\nRust");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].kind, SectionKind::Header);
        assert_eq!(s[1].title, "EXPERIENCE");
        assert_eq!(s[1].text, "Engineer");
        assert_eq!(s[2].kind, SectionKind::Skills);
        assert_eq!(s[2].title, "Skills");
    }

    #[test]
    fn inline_list_headings() {
        let s = split("Jane Doe\nSkills: Rust, Go\njane@x.com\nEXPERIENCE\nLanguages: English");
        let kinds: Vec<SectionKind> = s.iter().map(|x| x.kind).collect();
        assert_eq!(kinds, [SectionKind::Header, SectionKind::Skills, SectionKind::Header, SectionKind::Languages]);
        assert_eq!(s[1].text, "Rust, Go");
        assert_eq!(s[2].text, "jane@x.com");
        let s = split("EXPERIENCE\nEngineer, Acme\nTech Stack: Python, Go\tAug 2024 - present\n");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].kind, SectionKind::Work);
        let s = split("Education\nMIT\nB.S. in CS\nCourses\n• Databases\nRiver High School\nDiploma\n");
        assert_eq!(s.len(), 1);
        let s = split(
            "Ana Lima\nExperience\tData Engineer\tSep 2021–Present\nAcme\n– Mentored four students on research\nprojects\nEducation\tM.Sc. Physics\n",
        );
        let got: Vec<(SectionKind, &str)> = s.iter().map(|x| (x.kind, x.text.as_str())).collect();
        assert_eq!(
            got,
            [
                (SectionKind::Header, "Ana Lima"),
                (
                    SectionKind::Work,
                    "Data Engineer\tSep 2021–Present\nAcme\n– Mentored four students on research\nprojects"
                ),
                (SectionKind::Education, "M.Sc. Physics")
            ]
        );
    }
}
