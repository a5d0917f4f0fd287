//! The generator's vocabulary: languages, words, subjects, people, domains, mailers
//! and attachment types.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lang {
    English,
    French,
    German,
    Spanish,
    Russian,
    Greek,
    Japanese,
    Chinese,
    Korean,
    Arabic,
    Hebrew,
}

impl Lang {
    pub(super) fn words(self) -> &'static [&'static str] {
        match self {
            Lang::English => EN_WORDS,
            Lang::French => FR_WORDS,
            Lang::German => DE_WORDS,
            Lang::Spanish => ES_WORDS,
            Lang::Russian => RU_WORDS,
            Lang::Greek => EL_WORDS,
            Lang::Japanese => JA_WORDS,
            Lang::Chinese => ZH_WORDS,
            Lang::Korean => KO_WORDS,
            Lang::Arabic => AR_WORDS,
            Lang::Hebrew => HE_WORDS,
        }
    }

    pub(super) fn subjects(self) -> &'static [&'static str] {
        match self {
            Lang::English => EN_SUBJECTS,
            Lang::French => FR_SUBJECTS,
            Lang::German => DE_SUBJECTS,
            Lang::Spanish => ES_SUBJECTS,
            Lang::Russian => RU_SUBJECTS,
            Lang::Greek => EL_SUBJECTS,
            Lang::Japanese => JA_SUBJECTS,
            Lang::Chinese => ZH_SUBJECTS,
            Lang::Korean => KO_SUBJECTS,
            Lang::Arabic => AR_SUBJECTS,
            Lang::Hebrew => HE_SUBJECTS,
        }
    }

    /// Written without spaces between words.
    pub(super) fn no_spaces(self) -> bool {
        matches!(self, Lang::Japanese | Lang::Chinese)
    }

    pub(super) fn full_stop(self) -> &'static str {
        match self {
            Lang::Japanese | Lang::Chinese => "。",
            _ => ".",
        }
    }

    /// Every word is in ISO-8859-1.
    pub(super) fn latin1(self) -> bool {
        matches!(
            self,
            Lang::English | Lang::French | Lang::German | Lang::Spanish
        )
    }

    pub(super) fn code(self) -> &'static str {
        match self {
            Lang::English => "en",
            Lang::French => "fr",
            Lang::German => "de",
            Lang::Spanish => "es",
            Lang::Russian => "ru",
            Lang::Greek => "el",
            Lang::Japanese => "ja",
            Lang::Chinese => "zh",
            Lang::Korean => "ko",
            Lang::Arabic => "ar",
            Lang::Hebrew => "he",
        }
    }
}

#[rustfmt::skip]
pub(super) const EN_WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "this", "are", "at", "from", "we", "have", "an", "which", "or", "you", "they",
    "will", "would", "can", "should", "about", "there", "some", "more", "when", "after",
    "server", "mailbox", "release", "report", "meeting", "budget", "schedule", "project",
    "customer", "update", "issue", "patch", "review", "deadline", "team", "office", "quarter",
    "draft", "proposal", "contract", "invoice", "support", "question", "answer", "database",
    "backup", "network", "storage", "latency", "throughput", "index", "folder", "message",
    "thread", "attachment", "version", "feature", "test", "results", "numbers", "morning",
    "afternoon", "tomorrow", "yesterday", "next", "week", "month", "please", "thanks", "again",
    "really", "probably", "quickly", "carefully", "already", "still", "good", "new", "old",
    "large", "small", "important", "simple", "difficult", "final", "check", "send", "fix",
    "move", "discuss", "confirm", "prepare", "deploy", "measure",
];

#[rustfmt::skip]
pub(super) const FR_WORDS: &[&str] = &[
    "le", "la", "les", "de", "des", "et", "à", "un", "une", "pour", "avec", "dans", "sur",
    "nous", "vous", "être", "été", "réunion", "équipe", "prochaine", "semaine", "déjà", "après",
    "très", "problème", "résumé", "référence", "système", "sécurité", "réseau", "décision",
    "à jour", "fenêtre", "tâche", "côté", "reçu", "élève", "créé", "préféré", "ça", "garçon",
    "façon", "leçon", "français", "où", "là", "voilà", "mémoire", "développé",
];

#[rustfmt::skip]
pub(super) const DE_WORDS: &[&str] = &[
    "der", "die", "das", "und", "zu", "mit", "für", "auf", "ist", "nicht", "wir", "Sie",
    "Grüße", "Größe", "Übersicht", "Prüfung", "Straße", "Bürgermeister", "Änderung", "schön",
    "für", "über", "müssen", "können", "würde", "möchte", "Schlüssel", "Zähler", "Gebäude",
    "Größenordnung", "Tür", "Lösung", "Bestätigung", "Rückmeldung", "Frühstück", "Mädchen",
    "Vorschläge", "Entwürfe", "Öffnungszeiten", "gemäß", "heißt", "weiß",
];

#[rustfmt::skip]
pub(super) const ES_WORDS: &[&str] = &[
    "el", "la", "los", "las", "de", "y", "en", "que", "por", "con", "para", "una", "reunión",
    "información", "también", "así", "más", "año", "niño", "mañana", "señor", "compañía",
    "teléfono", "número", "días", "próxima", "situación", "código", "aquí", "después", "está",
    "según", "último", "pequeño", "diseño", "español", "acción", "presentación",
];

#[rustfmt::skip]
pub(super) const RU_WORDS: &[&str] = &[
    "и", "в", "не", "на", "я", "что", "тот", "быть", "с", "он", "а", "весь", "это", "как",
    "отчёт", "встреча", "сервер", "письмо", "проект", "сегодня", "завтра", "неделя",
    "пожалуйста", "спасибо", "вопрос", "ответ", "команда", "бюджет", "версия", "данные",
    "почта", "ящик", "сообщение", "вложение", "обновление", "проверка", "решение",
];

#[rustfmt::skip]
pub(super) const EL_WORDS: &[&str] = &[
    "και", "το", "η", "ο", "να", "σε", "με", "για", "από", "είναι", "συνάντηση", "έργο",
    "αναφορά", "ομάδα", "εβδομάδα", "αύριο", "σήμερα", "ευχαριστώ", "παρακαλώ", "μήνυμα",
    "διακομιστής", "έκδοση", "προϋπολογισμός", "ερώτηση", "απάντηση", "πρόταση",
];

#[rustfmt::skip]
pub(super) const JA_WORDS: &[&str] = &[
    "お世話になっております", "会議", "資料", "確認", "よろしくお願いします", "来週", "サーバー", "メール", "添付ファイル", "予定", "報告書",
    "プロジェクト", "の", "を", "に", "が", "は", "です", "ます", "しました", "について", "ご連絡", "変更", "対応",
];

#[rustfmt::skip]
pub(super) const ZH_WORDS: &[&str] = &[
    "我们", "会议", "项目", "进度", "服务器", "邮件", "附件", "报告", "请", "确认", "下周", "的", "了", "是", "在", "和",
    "已经", "更新", "问题", "解决", "谢谢", "测试", "版本",
];

#[rustfmt::skip]
pub(super) const KO_WORDS: &[&str] = &[
    "안녕하세요", "회의", "일정", "자료", "확인", "부탁드립니다", "다음", "주", "서버", "메일", "첨부", "파일", "보고서", "프로젝트",
    "감사합니다", "변경", "사항", "검토", "요청",
];

#[rustfmt::skip]
pub(super) const AR_WORDS: &[&str] = &[
    "في", "من", "على", "إلى", "أن", "هذا", "اجتماع", "تقرير", "المشروع", "الخادم", "رسالة",
    "شكرا", "الأسبوع", "القادم", "مرفق", "الميزانية", "سؤال", "جواب", "الفريق", "تحديث",
];

#[rustfmt::skip]
pub(super) const HE_WORDS: &[&str] = &[
    "של", "את", "על", "עם", "זה", "לא", "פגישה", "דוח", "פרויקט", "שרת", "הודעה", "תודה",
    "שבוע", "הבא", "קובץ", "מצורף", "תקציב", "שאלה", "תשובה", "צוות", "עדכון",
];

#[rustfmt::skip]
pub(super) const EN_SUBJECTS: &[&str] = &[
    "Quarterly report", "Meeting notes", "Build failure on main", "Lunch on Friday?",
    "Server maintenance window tonight", "Your account statement", "Draft proposal for review",
    "Photos from the trip", "Question about the IMAP API", "New release is out", "Weekly sync",
    "Budget review", "Re-org plans", "Action required: password expiry", "Holiday schedule",
    "Invoice attached", "Performance numbers for the new storage backend",
    "Can you take a look at this patch?",
    "Minutes of the board meeting held on Tuesday and the follow-up items we agreed on",
    "Welcome aboard!",
];
pub(super) const FR_SUBJECTS: &[&str] = &[
    "Réunion de l'équipe – ordre du jour",
    "Compte rendu de la réunion",
    "Problème de sécurité réseau",
    "Déjeuner vendredi ?",
    "Mise à jour du système",
];
pub(super) const DE_SUBJECTS: &[&str] = &[
    "Grüße aus München",
    "Änderungen am Entwurf",
    "Rückmeldung zur Prüfung",
    "Schlüsselübergabe Gebäude B",
    "Übersicht der Öffnungszeiten",
];
pub(super) const ES_SUBJECTS: &[&str] = &[
    "Reunión del próximo año",
    "Información de la compañía",
    "¿Mañana a qué hora?",
    "Presentación del diseño",
];
pub(super) const RU_SUBJECTS: &[&str] = &[
    "Отчёт за квартал",
    "Встреча в понедельник",
    "Обновление сервера",
    "Вопрос по проекту",
];
pub(super) const EL_SUBJECTS: &[&str] = &[
    "Προσφορά για το έργο",
    "Συνάντηση αύριο",
    "Αναφορά εβδομάδας",
];
pub(super) const JA_SUBJECTS: &[&str] =
    &["会議の議事録", "資料の確認のお願い", "来週の予定について"];
pub(super) const ZH_SUBJECTS: &[&str] = &["项目进度更新", "会议通知", "服务器维护"];
pub(super) const KO_SUBJECTS: &[&str] = &[
    "회의 일정 안내",
    "자료 확인 부탁드립니다",
    "보고서 검토 요청",
];
pub(super) const AR_SUBJECTS: &[&str] = &["تقرير الاجتماع", "تحديث المشروع"];
pub(super) const HE_SUBJECTS: &[&str] = &["פגישה ביום ראשון", "עדכון פרויקט"];

/// Subjects that mix scripts and emoji, used now and then by anyone.
pub(super) const MIXED_SUBJECTS: &[&str] = &[
    "Ünïcödé test ✓ 🚀",
    "Launch 🎉 – «final» numbers",
    "FYI: naïve café résumé – 日本語 – Ελληνικά",
];

/// (display name, address handle, language).
pub(super) const PEOPLE: &[(&str, &str, Lang)] = &[
    ("Alice Smith", "alice.smith", Lang::English),
    ("Bob Johnson", "bob", Lang::English),
    ("Carol Brown", "carol.brown", Lang::English),
    ("David Taylor", "dtaylor", Lang::English),
    ("Erin Wilson", "erin", Lang::English),
    ("Frank Clark", "frank.clark", Lang::English),
    ("Grace Lewis", "grace", Lang::English),
    ("Heidi Walker", "heidi.walker", Lang::English),
    ("Ivan Hall", "ivan", Lang::English),
    ("Judy Young", "judy.young", Lang::English),
    ("Mallory O'Brien", "mallory", Lang::English),
    ("Peggy Sue", "peggy", Lang::English),
    ("Trent Reznor-Smith", "trent", Lang::English),
    ("Victor Ng", "victor.ng", Lang::English),
    ("Walter White, Jr.", "walter", Lang::English),
    ("Olivia Martinez", "olivia", Lang::English),
    ("François Dupont", "francois.dupont", Lang::French),
    ("Zoë Lefèvre", "zoe.lefevre", Lang::French),
    ("Hélène Garçon", "helene", Lang::French),
    ("Jürgen Müller", "juergen.mueller", Lang::German),
    ("Käthe Größ", "kaethe", Lang::German),
    ("José Núñez", "jose.nunez", Lang::Spanish),
    ("María Peña", "maria.pena", Lang::Spanish),
    ("Алексей Иванов", "alexei.ivanov", Lang::Russian),
    ("Мария Петрова", "maria.petrova", Lang::Russian),
    ("Γιώργος Παπαδόπουλος", "giorgos", Lang::Greek),
    ("山田 太郎", "taro.yamada", Lang::Japanese),
    ("佐藤 花子", "hanako.sato", Lang::Japanese),
    ("王伟", "wang.wei", Lang::Chinese),
    ("李娜", "li.na", Lang::Chinese),
    ("김민준", "minjun.kim", Lang::Korean),
    ("محمد علي", "mohammed.ali", Lang::Arabic),
    ("דוד כהן", "david.cohen", Lang::Hebrew),
];

pub(super) const OTHER_DOMAINS: &[&str] = &[
    "example.com",
    "example.net",
    "mail.example.com",
    "corp.example.net",
];

pub(super) const ZONES: &[i16] = &[
    0, 0, 60, 60, 120, -300, -240, -420, -480, 330, 540, 480, -180, 600,
];

pub(super) const MAILERS: &[(&str, &str)] = &[
    ("User-Agent", "Mutt/2.2.12 (2023-09-09)"),
    (
        "User-Agent",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.4.0",
    ),
    ("X-Mailer", "Apple Mail (2.3774.600.62)"),
    ("X-Mailer", "Microsoft Outlook 16.0"),
    ("User-Agent", "Roundcube Webmail/1.6.9"),
    ("X-Mailer", "Evolution 3.52.1"),
    ("User-Agent", "K-9 Mail for Android"),
];

/// (content type, file name stem, extension, magic prefix).
pub(super) const ATTACHMENT_TYPES: &[(&str, &str, &str, &[u8])] = &[
    (
        "application/pdf",
        "report",
        "pdf",
        b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n",
    ),
    ("image/png", "IMG_", "png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
    (
        "image/jpeg",
        "photo",
        "jpg",
        b"\xFF\xD8\xFF\xE0\0\x10JFIF\0",
    ),
    (
        "application/zip",
        "archive",
        "zip",
        b"PK\x03\x04\x14\0\0\0\x08\0",
    ),
    ("application/octet-stream", "dump", "bin", b""),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "Entwurf_Übersicht",
        "docx",
        b"PK\x03\x04\x14\0\x06\0",
    ),
    ("application/pdf", "Отчёт", "pdf", b"%PDF-1.4\n"),
    ("image/png", "資料", "png", b"\x89PNG\r\n\x1a\n"),
];
