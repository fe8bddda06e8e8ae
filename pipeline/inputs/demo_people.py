"""The people of the demo data: names from each country's pools (some made spam-like), job
titles by seniority, and email addresses (business, free-mail, disposable or blank)."""

from __future__ import annotations

import unicodedata

import numpy as np

# Which name pools a country's people come from.
_COUNTRY_POOLS = {
    "DE": {"de": 0.88, "intl": 0.12}, "US": {"en": 0.72, "es": 0.06, "intl": 0.22},
    "GB": {"en": 0.82, "intl": 0.18}, "FR": {"fr": 0.86, "intl": 0.14},
    "NL": {"nl": 0.86, "intl": 0.14}, "ES": {"es": 0.9, "intl": 0.1},
    "IT": {"it": 0.9, "intl": 0.1}, "CH": {"de": 0.6, "fr": 0.2, "it": 0.08, "intl": 0.12},
    "AT": {"de": 0.9, "intl": 0.1}, "BE": {"nl": 0.5, "fr": 0.4, "intl": 0.1},
    "SE": {"sv": 0.88, "intl": 0.12}, "PL": {"pl": 0.92, "intl": 0.08},
}  # fmt: skip
_FIRST_NAMES = {
    "de": ("Anna", "Lukas", "Jonas", "Lena", "Sophie", "Maximilian", "Felix", "Marie", "Paul",
           "Laura", "Jürgen", "Jörg", "Björn", "Sören", "Günter", "Katharina", "Tobias", "Sabine",
           "Stefan", "Ute", "Matthias", "Hannah", "Moritz", "Julia", "Timo", "Frauke", "Jan"),
    "en": ("James", "Olivia", "Emma", "Liam", "Noah", "Ava", "Sophia", "William", "Michael",
           "Emily", "Daniel", "Sarah", "Jessica", "David", "Chloe", "Ryan", "Megan", "Connor",
           "Siobhán", "Seán", "John", "Grace", "Oliver", "Amelia"),
    "fr": ("Élodie", "Amélie", "Léa", "Chloé", "Camille", "Manon", "Théo", "Hugo", "Louis",
           "Gabriel", "Raphaël", "Jérôme", "François", "Céline", "Hélène", "Benoît", "Noël",
           "Zoë", "Mathilde", "Clément", "Anaïs", "Stéphane", "Marie-Claire", "Jean-Luc"),
    "nl": ("Daan", "Sem", "Lieke", "Sanne", "Bram", "Thijs", "Femke", "Joost", "Anouk",
           "Maarten", "Sietse", "Ruud", "Eline", "Jeroen", "Noor", "Wouter", "Ingrid", "Kees"),
    "es": ("José", "María", "Lucía", "Sofía", "Martín", "Hugo", "Álvaro", "Javier", "Carmen",
           "Pablo", "Alejandro", "Inés", "Raúl", "Núria", "Jordi", "Begoña", "Ana", "Andrés"),
    "it": ("Giuseppe", "Giulia", "Francesca", "Alessandro", "Lorenzo", "Matteo", "Chiara",
           "Niccolò", "Federica", "Luca", "Sara", "Andrea", "Elisa", "Marco", "Martina"),
    "sv": ("Lars", "Åsa", "Björn", "Sven", "Ingrid", "Elsa", "Maja", "Oskar", "Erik", "Linnéa",
           "Göran", "Astrid", "Johan", "Karin"),
    "pl": ("Piotr", "Katarzyna", "Małgorzata", "Krzysztof", "Agnieszka", "Tomasz", "Paweł",
           "Łukasz", "Zofia", "Jakub", "Magdalena", "Michał", "Anna", "Marek"),
    "intl": ("Minh", "Thảo", "Anh", "Priya", "Arjun", "Rahul", "Aisha", "Mohammed", "Fatima",
             "Yusuf", "Wei", "Mei", "Hiroshi", "Yuki", "Kwame", "Amara", "Oğuz", "Elif", "Çağla",
             "Dimitris", "Ngozi", "Sun-hee", "Mateus", "Leila"),
}  # fmt: skip
_LAST_NAMES = {
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
           "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf",
           "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann",
           "Hartmann", "Lange", "Weiß", "von Bergen", "Groß", "Köhler", "Jäger", "von der Heide"),
    "en": ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
           "Taylor", "Anderson", "Thompson", "White", "Harris", "Clark", "Lewis", "O'Neil",
           "O'Brien", "McDonald", "MacLeod", "Walker", "Hughes", "Evans", "Wright", "Robinson"),
    "fr": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
           "Leroy", "Moreau", "Lefèvre", "Laurent", "Girard", "Rousseau", "Bonnet", "Lambert",
           "de la Fontaine", "Le Gall", "Mercier", "Chevalier", "Faure", "Gauthier", "d'Arcy"),
    "nl": ("de Jong", "Jansen", "de Vries", "van den Berg", "van der Berg", "van Dijk", "Bakker",
           "Janssen", "Visser", "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos",
           "Peters", "Hendriks", "van Leeuwen", "Dekker", "van der Meer", "Claes", "Peeters"),
    "es": ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
           "Pérez", "Gómez", "Díaz", "Ruiz", "Hernández", "Jiménez", "Muñoz", "de la Cruz",
           "Ibáñez", "Castaño", "Puig"),
    "it": ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
           "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "D'Angelo", "Lombardi"),
    "sv": ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson",
           "Persson", "Svensson", "Gustafsson", "Lindström", "Åkesson", "Sjöberg", "Öberg"),
    "pl": ("Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski",
           "Zieliński", "Szymański", "Woźniak", "Dąbrowski", "Kozłowski"),
    "intl": ("Nguyễn", "Trần", "Lê", "Phạm", "Patel", "Sharma", "Singh", "Khan", "Ahmed",
             "Yılmaz", "Öztürk", "Chen", "Wang", "Li", "Tanaka", "Sato", "Okafor", "Mensah",
             "Papadopoulos", "Kim", "Park", "da Silva", "dos Santos", "Haddad"),
}  # fmt: skip

# Spam-like names. Every one of them has no capital letter, a run of 4+ keys in keyboard order
# (QWERTY / QWERTZ / AZERTY), 4+ repeats of one character, or is a well-known fake value.
_KEYBOARD_RUNS = (
    "asdf", "qwer", "azerty", "qwertz", "qwerty", "asdfgh", "zxcv", "yxcv", "wxcv", "qsdf",
    "sdfg", "hjkl", "uiop", "Asdf", "Qwerty", "Azerty",
)  # fmt: skip
_REPEATS = ("aaaa", "xxxx", "Aaaa", "zzzzz", "jjjj", "ssss", "Xxxxx")
_FAKE_FIRST = ("test", "Test", "TEST", "fake", "Dummy")
_FAKE_LAST = ("test", "Test", "User", "Testing", "Tester")
SPAM_FAKE_VALUES = ("dummy", "fake", "test", "tester", "testing")
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "qwertzuiop", "yxcvbnm", "azertyuiop",
                 "qsdfghjklm", "wxcvbn")  # fmt: skip

TITLES = {
    "c_level": ("Chief Executive Officer", "CEO", "CTO", "CFO", "COO", "CMO",
                "Chief Revenue Officer", "Founder & CEO", "Co-Founder", "Owner",
                "Geschäftsführer", "Directeur Général"),
    "vp": ("VP Sales", "Vice President of Marketing", "VP Engineering", "SVP Operations",
           "Vice President, Finance", "EVP Business Development", "VP Customer Success"),
    "director": ("Director of Operations", "Head of Growth", "Head of Sales", "Sales Director",
                 "Marketing Director", "Director, IT", "Head of Customer Success",
                 "Directeur Commercial"),
    "manager": ("Sales Manager", "Team Lead", "Marketing Manager", "Product Manager",
                "Project Manager", "Account Manager", "Office Manager", "Teamleiter Vertrieb",
                "Responsable Marketing"),
    "individual": ("Software Engineer", "Account Executive", "Marketing Specialist",
                   "Data Analyst", "Consultant", "Sales Representative", "Designer", "Accountant",
                   "Developer", "Executive Assistant", "Sales Development Representative",
                   "Customer Support Agent"),
    "student": ("Student", "Intern", "PhD candidate", "Working Student", "Werkstudent",
                "Graduate Student", "Trainee"),
}  # fmt: skip
_SENIORITY_WEIGHTS = {
    "c_level": 0.07, "vp": 0.05, "director": 0.11, "manager": 0.2, "individual": 0.4,
    "student": 0.09, "missing": 0.08,
}  # fmt: skip
_TITLE_LOWERCASE_P = 0.08

FREEMAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com")
LOCAL_FREEMAIL = {
    "DE": ("gmx.de", "web.de", "t-online.de"), "AT": ("gmx.at",), "CH": ("bluewin.ch",),
    "FR": ("orange.fr", "free.fr", "laposte.net"), "BE": ("skynet.be",), "NL": ("ziggo.nl",),
    "IT": ("libero.it",), "PL": ("wp.pl", "onet.pl"), "GB": ("btinternet.com", "yahoo.co.uk"),
    "ES": ("yahoo.es",),
}  # fmt: skip
DISPOSABLE_DOMAINS = ("mailinator.com", "yopmail.com", "guerrillamail.com", "10minutemail.com")

_SPAM_SHARE = 0.04
_EMAIL_BLANK_P = 0.015

_ASCII_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d",
                             "ı": "i", "Ł": "L", "Đ": "D", "Ø": "O", "Æ": "AE"})  # fmt: skip


def make_names(
    rng: np.random.Generator, country: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First and last names from the country's pools, with ~4% made spam-like."""
    n = len(country)
    first = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    pool_roll = rng.random(n)
    first_roll = rng.random(n)
    last_roll = rng.random(n)
    for ctry, pools in _COUNTRY_POOLS.items():
        rows = np.flatnonzero(country == ctry)
        edges = np.cumsum(list(pools.values()))
        which = np.minimum(np.searchsorted(edges, pool_roll[rows], side="right"), len(pools) - 1)
        for k, pool in enumerate(pools):
            sel = rows[which == k]
            firsts, lasts = _FIRST_NAMES[pool], _LAST_NAMES[pool]
            first[sel] = np.array(firsts, dtype=object)[(first_roll[sel] * len(firsts)).astype(int)]
            last[sel] = np.array(lasts, dtype=object)[(last_roll[sel] * len(lasts)).astype(int)]

    spam = rng.random(n) < _SPAM_SHARE
    kind = rng.choice(4, size=n, p=(0.35, 0.3, 0.15, 0.2))
    pick_a, pick_b, coin = rng.random(n), rng.random(n), rng.random(n)

    def pick(values: tuple[str, ...], u: float) -> str:
        return values[int(u * len(values))]

    for i in np.flatnonzero(spam):
        if kind[i] == 0:  # "john smith": no capital letter anywhere
            first[i], last[i] = first[i].lower(), last[i].lower()
        elif kind[i] == 1:  # keyboard runs
            first[i] = pick(_KEYBOARD_RUNS, pick_a[i])
            if coin[i] < 0.5:
                last[i] = pick(_KEYBOARD_RUNS, pick_b[i])
        elif kind[i] == 2:  # repeated characters
            if coin[i] < 0.5:
                first[i] = pick(_REPEATS, pick_a[i])
            else:
                last[i] = pick(_REPEATS, pick_b[i])
        else:  # fake values
            first[i] = pick(_FAKE_FIRST, pick_a[i])
            if coin[i] < 0.6:
                last[i] = pick(_FAKE_LAST, pick_b[i])
    return first, last, spam


def make_titles(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Seniority level and a free-text job title (some lower-cased, some blank)."""
    levels = np.array(list(_SENIORITY_WEIGHTS), dtype=object)
    seniority = rng.choice(levels, size=n, p=list(_SENIORITY_WEIGHTS.values()))
    title_roll = rng.random(n)
    lower = rng.random(n) < _TITLE_LOWERCASE_P
    title = np.empty(n, dtype=object)
    for level, titles in TITLES.items():
        rows = np.flatnonzero(seniority == level)
        title[rows] = np.array(titles, dtype=object)[(title_roll[rows] * len(titles)).astype(int)]
    for i in np.flatnonzero(lower & (seniority != "missing")):
        title[i] = title[i].lower()
    title[seniority == "missing"] = None
    return seniority, title


def make_emails(
    rng: np.random.Generator,
    first: np.ndarray,
    last: np.ndarray,
    spam: np.ndarray,
    seniority: np.ndarray,
    country: np.ndarray,
    company_domain: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Email addresses and their domain type: business / freemail / disposable / missing."""
    n = len(first)
    student = seniority == "student"
    # P(blank), P(disposable), P(freemail); business is the rest.
    p_blank = np.where(spam, 0.05, _EMAIL_BLANK_P)
    p_disp = np.where(spam, 0.45, 0.0135)
    p_free = np.where(spam, 0.3, np.where(student, 0.6, 0.225))
    u = rng.random(n)
    kind = np.where(
        u < p_blank,
        "missing",
        np.where(
            u < p_blank + p_disp,
            "disposable",
            np.where(u < p_blank + p_disp + p_free, "freemail", "business"),
        ),
    ).astype(object)
    style, local_roll, domain_roll, digits = (
        rng.random(n),
        rng.random(n),
        rng.random(n),
        rng.integers(1, 100, size=n),
    )
    random_local = rng.integers(0, 36, size=(n, 8))
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

    email = np.empty(n, dtype=object)
    for i in range(n):
        f, la = ascii_fold(first[i]), ascii_fold(last[i])
        if kind[i] == "missing":
            email[i] = None
            continue
        if kind[i] == "business":
            local = f"{f}.{la}" if style[i] < 0.8 else f"{f[:1]}{la}"
            email[i] = f"{local}@{company_domain[i]}"
        elif kind[i] == "freemail":
            if style[i] < 0.5:
                local = f"{f}.{la}"
            elif style[i] < 0.8:
                local = f"{f}.{la}{digits[i]}"
            else:
                local = f"{f}{la}"
            local_domains = LOCAL_FREEMAIL.get(country[i], ())
            if local_domains and local_roll[i] < 0.35:
                domain = local_domains[int(domain_roll[i] * len(local_domains))]
            else:
                domain = _weighted_pick(
                    FREEMAIL_DOMAINS, (0.5, 0.12, 0.14, 0.16, 0.08), domain_roll[i]
                )
            email[i] = f"{local}@{domain}"
        else:
            if style[i] < 0.6:
                local = "".join(alphabet[k] for k in random_local[i])
            else:
                local = f"{f}{la}{digits[i]}"
            domain = DISPOSABLE_DOMAINS[int(domain_roll[i] * len(DISPOSABLE_DOMAINS))]
            email[i] = f"{local}@{domain}"
    return email, kind


def _weighted_pick(values: tuple[str, ...], weights: tuple[float, ...], u: float) -> str:
    edges = np.cumsum(weights) / sum(weights)
    return values[min(int(np.searchsorted(edges, u, side="right")), len(values) - 1)]


def ascii_fold(text: str) -> str:
    """Lower-case ASCII form of a name for an email address ("Nguyễn" -> "nguyen")."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_FOLD))
    ascii_text = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    return "".join(ch for ch in ascii_text if ch.isalnum() or ch == "-")
