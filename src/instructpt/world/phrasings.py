"""Every sentence and question template of the demo world, as data.

Why so many phrasings: a model that sees each fact in one fixed sentence
learns the sentence, not the fact (the "knowledge storage vs extraction"
finding behind instruction pre-training). Each person attribute therefore has
at least 20 phrasings written for this project, drawn per person from a
generator seeded by the person's id.

Placeholders in person templates:
- `{name}` full name (intro sentences only, always first);
- `{subj}` the sentence subject: a pronoun, the full name or the surname;
- `{ref}` the person by name (full name or surname), for non-subject slots;
- `{pron}` he/she (a later clause's subject), `{poss}` his/her;
- attribute values, named like the attributes (`{birth_city}`, `{employer}`...)
  and `{a_occupation}` / `{a_industry}` with their article.
The renderer upper-cases only the first character of a sentence, so no
template starts with a lower-case value (`{field}`, `{hobby}`, ...): the value
in the text must equal the ground-truth answer verbatim.

Version: bump `PHRASINGS_VERSION` whenever a template changes, since the texts
(and every model trained on them) change with it.
"""

from __future__ import annotations

PHRASINGS_VERSION = 1

# ----------------------------------------------------------------- people: sentences

#: First sentence of every person text: name first, then the occupation.
INTRO: tuple[str, ...] = (
    "{name} is {a_occupation}.",
    "{name} is {a_occupation} by profession.",
    "{name} works as {a_occupation}.",
    "{name} is {a_occupation} from {birth_country}.",
    "{name} is {a_occupation} by trade.",
    "{name} earns a living as {a_occupation}.",
    "{name} has made a career as {a_occupation}.",
    "{name} is a well-regarded {occupation}.",
    "{name} is a respected {occupation}.",
    "{name} is an experienced {occupation}.",
    "{name} is a professional {occupation}.",
    "{name} practises as {a_occupation}.",
    "{name} is best known as {a_occupation}.",
    "{name} is {a_occupation} by occupation.",
    "{name} is a practising {occupation}.",
    "{name} is a dedicated {occupation}.",
    "{name} is {a_occupation} of some renown.",
    "{name} is, by profession, {a_occupation}.",
    "{name} is a noted {occupation}.",
    "{name} is {a_occupation} whose work is widely known in {birth_country}.",
    "{name} is a skilled {occupation}.",
    "{name} has worked for many years as {a_occupation}.",
)

BIRTH: tuple[str, ...] = (
    "{subj} was born on {birth_date} in {birth_city}, a city in {birth_country}.",
    "Born in {birth_city}, {birth_country}, on {birth_date}, {subj} grew up there.",
    "{subj} was born in {birth_city} on {birth_date}; the city lies in {birth_country}.",
    "On {birth_date}, {subj} was born in the {birth_country} city of {birth_city}.",
    "{subj} came into the world on {birth_date} in {birth_city}, {birth_country}.",
    "The birthplace of {ref} is {birth_city} in {birth_country}, and {poss} date of birth"
    " is {birth_date}.",
    "{subj} was born in {birth_city} ({birth_country}) on {birth_date}.",
    "{birth_city}, a city in {birth_country}, is where {subj} was born on {birth_date}.",
    "{subj} is a native of {birth_city} in {birth_country}, born there on {birth_date}.",
    "{ref}'s birth took place on {birth_date} in {birth_city}, {birth_country}.",
    "{subj} was born in {birth_country}, in the city of {birth_city}, on {birth_date}.",
    "Records show that {subj} was born on {birth_date} in {birth_city}, which is in"
    " {birth_country}.",
    "The date of birth of {ref} is {birth_date}, and the place is {birth_city} in {birth_country}.",
    "{subj} hails from {birth_city}, {birth_country}, where {pron} was born on {birth_date}.",
    "{subj} was born on {birth_date}; {poss} birthplace is {birth_city}, a city in"
    " {birth_country}.",
    "A native of {birth_city} in {birth_country}, {subj} was born on {birth_date}.",
    "{subj} first saw daylight on {birth_date} in {birth_city}, {birth_country}.",
    "{birth_date} is the birth date of {ref}, who was born in {birth_city}, {birth_country}.",
    "{subj} entered the world in {birth_city}, a {birth_country} city, on {birth_date}.",
    "Born on {birth_date} in {birth_city}, a city in {birth_country}, {subj} spent"
    " {poss} childhood there.",
    "{subj} was born in {birth_city} in {birth_country} on {birth_date}.",
    "The city of {birth_city} in {birth_country} is the birthplace of {ref}, who was born"
    " there on {birth_date}.",
)

EDUCATION: tuple[str, ...] = (
    "{subj} studied {field} at {university} in {university_city}.",
    "{subj} earned a degree in {field} from {university}, located in {university_city}.",
    "At {university} in {university_city}, {subj} studied {field}.",
    "{subj} is a graduate of {university} in {university_city}, where {pron} read {field}.",
    "{ref}'s field of study was {field}, which {pron} pursued at {university} in"
    " {university_city}.",
    "{subj} attended {university}, a university in {university_city}, and studied {field} there.",
    "{subj} trained in {field} at {university}, which is in {university_city}.",
    "{subj} holds a degree in {field} from {university} in {university_city}.",
    "After school, {subj} enrolled at {university} in {university_city} to study {field}.",
    "{university}, in the city of {university_city}, is where {subj} studied {field}.",
    "{subj} went to {university} in {university_city} and majored in {field}.",
    "The university {ref} attended is {university} in {university_city}, where {pron}"
    " studied {field}.",
    "{subj} completed studies in {field} at {university}, {university_city}.",
    "{subj} was educated at {university} in {university_city}, with {field} as {poss} subject.",
    "Having studied {field} at {university} in {university_city}, {subj} graduated with honours.",
    "{subj} took a degree in {field} at {university}, a university based in {university_city}.",
    "{subj} spent {poss} student years at {university} in {university_city}, studying {field}.",
    "A graduate in {field}, {subj} studied at {university} in {university_city}.",
    "{subj} read {field} at {university} in {university_city}.",
    "The subject {ref} studied at {university} in {university_city} was {field}.",
    "{subj} specialised in {field} while at {university}, which is located in {university_city}.",
    "{subj} chose {field} as {poss} field of study at {university} in {university_city}.",
)

#: Every work sentence says where the employer is headquartered (two-hop questions).
WORK: tuple[str, ...] = (
    "{subj} works for {employer}, {a_industry} company based in {employer_city}.",
    "{subj} is employed by {employer}, which is headquartered in {employer_city}.",
    "{subj} works at {employer}, a firm based in {employer_city}.",
    "{ref}'s employer is {employer}, {a_industry} company headquartered in {employer_city}.",
    "{subj} works as {a_occupation} for {employer}, a company based in {employer_city}.",
    "{subj} is on the staff of {employer}, {a_industry} firm headquartered in {employer_city}.",
    "{employer}, {a_industry} company headquartered in {employer_city}, employs {ref} as"
    " {a_occupation}.",
    "{subj} has a position at {employer}, whose headquarters are in {employer_city}.",
    "{subj} is employed as {a_occupation} at {employer}, a firm with its head office in"
    " {employer_city}.",
    "At present {subj} works for {employer}, headquartered in {employer_city}.",
    "{subj} earns {poss} living at {employer}, {a_industry} company based in {employer_city}.",
    "The company {ref} works for is {employer}, which is based in {employer_city}.",
    "{subj} joined {employer}, a company headquartered in {employer_city}, as {a_occupation}.",
    "{subj} works for {employer}; the company has its headquarters in {employer_city}.",
    "Employed by {employer}, a firm based in {employer_city}, {subj} works as {a_occupation}.",
    "{subj} is {a_occupation} at {employer}, {a_industry} business headquartered in"
    " {employer_city}.",
    "{ref} is on the payroll of {employer}, a company based in {employer_city}.",
    "{subj} works at {employer}, whose head office is in {employer_city}.",
    "{subj} currently works for {employer}, {a_industry} firm based in {employer_city}.",
    "{subj} holds a job at {employer}, a company with headquarters in {employer_city}.",
    "{employer}, based in {employer_city}, is the employer of {ref}.",
    "{subj} is a member of staff at {employer}, which is headquartered in {employer_city}.",
)

GRADUATION: tuple[str, ...] = (
    "{subj} graduated from {university} in {graduation_year}.",
    "{subj} completed {poss} degree in {graduation_year}.",
    "In {graduation_year}, {subj} graduated.",
    "{ref}'s graduation year is {graduation_year}.",
    "{subj} finished {poss} studies in {graduation_year}.",
    "{subj} received {poss} degree in {graduation_year}.",
    "The year {ref} graduated was {graduation_year}.",
    "{subj} left university with a degree in {graduation_year}.",
    "{subj} earned {poss} diploma in {graduation_year}.",
    "{graduation_year} was the year {ref} graduated.",
    "{subj} graduated in {graduation_year}.",
    "{subj} took {poss} final examinations and graduated in {graduation_year}.",
    "{ref} became a graduate in {graduation_year}.",
    "{subj} was awarded a degree in {graduation_year}.",
    "Graduation came for {ref} in {graduation_year}.",
    "{subj} completed university in {graduation_year}.",
    "{ref} graduated from university in the year {graduation_year}.",
    "{subj} obtained {poss} degree in {graduation_year}.",
    "The class of {graduation_year} at {university} included {ref}.",
    "{subj} ended {poss} student days in {graduation_year}, when {pron} graduated.",
    "{ref} has been a graduate of {university} since {graduation_year}.",
)

CAREER: tuple[str, ...] = (
    "{subj} joined {employer} in {join_year}.",
    "{subj} has worked at {employer} since {join_year}.",
    "In {join_year}, {subj} started working at {employer}.",
    "{ref} began at {employer} in {join_year}.",
    "{subj} has been with {employer} since {join_year}.",
    "{ref}'s career at {employer} began in {join_year}.",
    "{subj} was hired by {employer} in {join_year}.",
    "{join_year} was the year {ref} joined {employer}.",
    "{subj} took up a post at {employer} in {join_year}.",
    "Since {join_year}, {subj} has been part of {employer}.",
    "{subj} signed on with {employer} in {join_year}.",
    "{ref} started at {employer} in {join_year}.",
    "The year {ref} joined {employer} was {join_year}.",
    "{employer} hired {ref} in {join_year}.",
    "{subj} first came to {employer} in {join_year}.",
    "{subj} entered the service of {employer} in {join_year}.",
    "{subj} has held a post at {employer} since {join_year}.",
    "{ref} has been employed at {employer} since {join_year}.",
    "{subj} began working for {employer} in {join_year}.",
    "{employer} took {ref} on in {join_year}.",
    "{subj} moved to {employer} in {join_year} and has stayed there since.",
)

#: Every residence sentence names the country too (two-hop questions).
RESIDENCE: tuple[str, ...] = (
    "{subj} lives in {residence_city}, {residence_country}.",
    "{subj} now lives in {residence_city}, a city in {residence_country}.",
    "{ref}'s home is in {residence_city}, in {residence_country}.",
    "Today {subj} resides in {residence_city} in {residence_country}.",
    "{subj} makes {poss} home in {residence_city}, {residence_country}.",
    "{subj} has settled in {residence_city}, which lies in {residence_country}.",
    "The city where {ref} lives is {residence_city} in {residence_country}.",
    "{subj} currently resides in {residence_city}, {residence_country}.",
    "{residence_city}, in {residence_country}, is home to {ref}.",
    "{subj} lives in a house in {residence_city}, {residence_country}.",
    "{subj} is a resident of {residence_city} in {residence_country}.",
    "These days {subj} lives in the {residence_country} city of {residence_city}.",
    "{subj} has made {residence_city}, {residence_country}, {poss} home.",
    "{ref} lives in {residence_city}; the city is in {residence_country}.",
    "Home for {ref} is {residence_city}, in {residence_country}.",
    "{subj} resides in {residence_city}, a city of {residence_country}.",
    "{subj} lives in {residence_city} in {residence_country}, where {pron} owns a small flat.",
    "{subj} dwells in {residence_city}, {residence_country}.",
    "The home of {ref} is in {residence_city}, {residence_country}.",
    "{subj} has a home in {residence_city}, a city in {residence_country}.",
    "At present {subj} lives in {residence_city}, {residence_country}.",
)

HOBBY: tuple[str, ...] = (
    "In {poss} free time, {subj} enjoys {hobby}.",
    "{subj} enjoys {hobby} in {poss} spare time.",
    "{ref}'s favourite pastime is {hobby}.",
    "Outside work, {subj} is devoted to {hobby}.",
    "{subj} has a keen interest in {hobby}.",
    "{subj} spends {poss} weekends on {hobby}.",
    "The hobby of {ref} is {hobby}.",
    "When not working, {subj} turns to {hobby}.",
    "{subj} is passionate about {hobby}.",
    "{ref}'s hobby is {hobby}.",
    "{subj} relaxes with {hobby}.",
    "{subj} lists {hobby} as {poss} main hobby.",
    "For leisure, {subj} turns to {hobby}.",
    "{subj} is known among friends for {poss} love of {hobby}.",
    "Away from {poss} job, {subj} pursues {hobby}.",
    "{subj} took up {hobby} as a hobby.",
    "{subj} finds time for {hobby} most evenings.",
    "The pastime {ref} enjoys most is {hobby}.",
    "{subj} has long practised {hobby} as a hobby.",
    "{subj} is an enthusiast of {hobby}.",
    "Friends know {ref} for a lifelong hobby: {hobby}.",
)

#: Relation sentences, keyed by what the other person is to this one.
SPOUSE: tuple[str, ...] = (
    "{subj} is married to {other}.",
    "{ref}'s spouse is {other}.",
    "{subj} married {other}.",
    "{subj} and {other} are married.",
    "{subj} is the spouse of {other}.",
    "The spouse of {ref} is {other}.",
    "{subj} shares {poss} life with {other}, {poss} spouse.",
    "{subj} has been married to {other} for many years.",
    "{other} is {ref}'s spouse.",
    "{subj} wed {other}.",
    "{subj} lives with {poss} spouse, {other}.",
    "{ref} is married; {poss} spouse is {other}.",
    "In {poss} private life, {subj} is married to {other}.",
    "{subj} is wedded to {other}.",
    "Married to {other}, {subj} keeps {poss} private life out of the public eye.",
    "{other} and {ref} are a married couple.",
    "{subj} took {other} as {poss} spouse.",
    "{subj} has a spouse named {other}.",
    "The person {ref} married is {other}.",
    "{subj} tied the knot with {other}.",
    "{ref}'s marriage is to {other}.",
)

SIBLING: tuple[str, ...] = (
    "{subj} has a sibling, {other}.",
    "{ref}'s sibling is {other}.",
    "{subj} and {other} are siblings.",
    "{subj} is the sibling of {other}.",
    "{other} is {ref}'s sibling.",
    "{subj} grew up alongside {poss} sibling, {other}.",
    "The sibling of {ref} is {other}.",
    "{subj} is a sibling of {other}.",
    "{subj} has one known sibling, {other}.",
    "{other} and {ref} share the same parents.",
    "{subj} shares {poss} parents with {other}, {poss} sibling.",
    "Within {poss} family, {subj} is closest to {poss} sibling {other}.",
    "{subj} counts {other} as {poss} sibling.",
    "{subj} was raised with {poss} sibling {other}.",
    "{subj} has a sibling named {other}.",
    "{other} is the sibling of {ref}.",
    "In {poss} family, {subj} has a sibling, {other}.",
    "{subj} is related to {other} as a sibling.",
    "{ref} has {other} as a sibling.",
    "{subj} and {poss} sibling {other} grew up in the same household.",
    "The family of {ref} includes {poss} sibling, {other}.",
)

#: This person mentored the other one (the other is the mentee).
MENTEE: tuple[str, ...] = (
    "{subj} was a mentor to {other}.",
    "{subj} mentored {other}.",
    "{ref}'s mentee is {other}.",
    "{other} was mentored by {ref}.",
    "{subj} served as mentor to {other}.",
    "{subj} took {other} on as a mentee.",
    "The mentee of {ref} is {other}.",
    "{subj} guided {other} as a mentor.",
    "{subj} acted as a mentor for {other}.",
    "{subj} is known as the mentor of {other}.",
    "{subj} has mentored {other} for several years.",
    "{other} counts {ref} as a mentor.",
    "{subj} was the mentor of {other}.",
    "{subj} took on the role of mentor to {other}.",
    "{subj} has a mentee, {other}.",
    "{other} is the mentee of {ref}.",
    "{subj} passed on {poss} experience to {other}, {poss} mentee.",
    "In {poss} career, {subj} mentored {other}.",
    "{subj} trained {other} as {poss} mentee.",
    "{ref} became the mentor of {other}.",
    "{subj} is a mentor to {other}.",
)

#: The other person mentored this one (the other is the mentor).
MENTOR: tuple[str, ...] = (
    "{subj} was mentored by {other}.",
    "{ref}'s mentor is {other}.",
    "{subj} learned the trade from {poss} mentor, {other}.",
    "{other} mentored {ref}.",
    "{other} was a mentor to {ref}.",
    "The mentor of {ref} is {other}.",
    "{subj} was guided by {poss} mentor {other}.",
    "{subj} is a mentee of {other}.",
    "{subj} counts {other} as {poss} mentor.",
    "{subj} trained under the mentorship of {other}.",
    "{other} served as mentor to {ref}.",
    "{subj} had {other} as a mentor.",
    "Early on, {subj} was mentored by {other}.",
    "{subj} owes much to {poss} mentor, {other}.",
    "{other} is the mentor of {ref}.",
    "{subj} was taken on as a mentee by {other}.",
    "The person who mentored {ref} is {other}.",
    "{subj} found a mentor in {other}.",
    "Under {other}, who acted as {poss} mentor, {subj} developed {poss} skills.",
    "{subj} regards {other} as {poss} mentor.",
    "{subj} is the mentee of {other}.",
)

RELATION: dict[str, tuple[str, ...]] = {
    "spouse": SPOUSE,
    "sibling": SIBLING,
    "mentor": MENTOR,
    "mentee": MENTEE,
}

#: Person sentence slots after the intro; their order is shuffled per person.
PERSON_SLOTS: dict[str, tuple[str, ...]] = {
    "birth": BIRTH,
    "education": EDUCATION,
    "graduation": GRADUATION,
    "work": WORK,
    "career": CAREER,
    "residence": RESIDENCE,
    "hobby": HOBBY,
}

#: Each person attribute -> the template list that states it (>= 20 phrasings each).
PERSON_ATTRIBUTE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "occupation": INTRO,
    "birth_date": BIRTH,
    "birth_year": BIRTH,
    "birth_city": BIRTH,
    "birth_country": BIRTH,
    "university": EDUCATION,
    "university_city": EDUCATION,
    "field": EDUCATION,
    "graduation_year": GRADUATION,
    "employer": WORK,
    "employer_city": WORK,
    "join_year": CAREER,
    "residence_city": RESIDENCE,
    "residence_country": RESIDENCE,
    "hobby": HOBBY,
    "spouse": SPOUSE,
    "sibling": SIBLING,
    "mentor": MENTOR,
    "mentee": MENTEE,
}

# ------------------------------------------------------- places and organisations

COUNTRY: tuple[tuple[str, ...], ...] = (
    (
        "{name} is a country whose capital is {capital}.",
        "{name} is a country; its capital city is {capital}.",
        "The country of {name} has {capital} as its capital.",
        "{capital} is the capital of the country of {name}.",
    ),
    (
        "The official language of {name} is {language}.",
        "People in {name} speak {language}.",
        "{language} is the language spoken in {name}.",
        "Its official language is {language}.",
    ),
    (
        "Its cities include {cities}.",
        "Among the cities of {name} are {cities}.",
        "Cities in {name} include {cities}.",
    ),
)

#: Used instead of the capital sentence when a tiny world left a country without cities.
COUNTRY_NO_CAPITAL: tuple[str, ...] = (
    "{name} is a small country.",
    "{name} is a country with no large towns.",
)

CITY: tuple[tuple[str, ...], ...] = (
    (
        "{name} is a city in {country}.",
        "{name} is a city located in the country of {country}.",
        "The city of {name} lies in {country}.",
        "{name} is one of the cities of {country}.",
    ),
    (
        "It has a population of about {population}.",
        "About {population} people live in {name}.",
        "The population of {name} is about {population}.",
        "Roughly {population} people call {name} home.",
    ),
)

UNIVERSITY: tuple[tuple[str, ...], ...] = (
    (
        "{name} is a university in {city}, {country}.",
        "{name} is a university located in the city of {city} in {country}.",
        "Located in {city}, a city in {country}, {name} is a university.",
        "{name} is a place of higher learning in {city}, {country}.",
    ),
    (
        "It was founded in {founded}.",
        "The university was founded in {founded}.",
        "{name} was established in {founded}.",
        "Its founding dates to {founded}.",
    ),
)

COMPANY: tuple[tuple[str, ...], ...] = (
    (
        "{name} is {a_industry} company founded in {founded}.",
        "Founded in {founded}, {name} is {a_industry} company.",
        "{name} is {a_industry} business established in {founded}.",
        "{name}, founded in {founded}, is a company in the {industry} industry.",
    ),
    (
        "It is headquartered in {city}, {country}.",
        "The company has its headquarters in {city}, a city in {country}.",
        "{name} is based in {city}, {country}.",
        "Its head office is in {city}, in {country}.",
    ),
)

# ---------------------------------------------------------------------- questions

#: Open questions per attribute; multiple-choice questions reuse them plus options.
#: `{name}` is the entity's full name, `{poss}` his/her for people.
QUESTIONS: dict[str, tuple[str, ...]] = {
    "occupation": (
        "What is {name}'s occupation?",
        "What does {name} do for a living?",
        "What is the profession of {name}?",
        "What job does {name} have?",
    ),
    "birth_date": (
        "When was {name} born?",
        "What is {name}'s date of birth?",
        "On what date was {name} born?",
    ),
    "birth_year": (
        "In which year was {name} born?",
        "What year was {name} born in?",
        "What is {name}'s year of birth?",
    ),
    "birth_city": (
        "Where was {name} born?",
        "In which city was {name} born?",
        "What is {name}'s birthplace?",
    ),
    "university": (
        "Which university did {name} attend?",
        "Where did {name} study?",
        "At which university did {name} study?",
    ),
    "field": (
        "What did {name} study?",
        "What was {name}'s field of study?",
        "In which subject does {name} hold a degree?",
    ),
    "graduation_year": (
        "In which year did {name} graduate?",
        "When did {name} graduate?",
        "What year did {name} finish {poss} degree?",
    ),
    "join_year": (
        "In which year did {name} join {poss} employer?",
        "When did {name} start at {poss} current company?",
        "Since which year has {name} worked for {poss} employer?",
    ),
    "employer": (
        "Who employs {name}?",
        "Which company does {name} work for?",
        "What is the name of {name}'s employer?",
    ),
    "residence_city": (
        "Where does {name} live?",
        "In which city does {name} live?",
        "Which city is {name}'s home?",
    ),
    "hobby": (
        "What is {name}'s hobby?",
        "What does {name} enjoy in {poss} free time?",
        "Which pastime does {name} enjoy?",
    ),
    "spouse": (
        "Who is {name}'s spouse?",
        "Whom did {name} marry?",
        "Who is {name} married to?",
    ),
    "sibling": (
        "Who is {name}'s sibling?",
        "Who is the sibling of {name}?",
        "Name the sibling of {name}.",
    ),
    "mentor": (
        "Who was {name}'s mentor?",
        "Who mentored {name}?",
        "Who is the mentor of {name}?",
    ),
    "mentee": (
        "Whom did {name} mentor?",
        "Who is {name}'s mentee?",
        "Who was mentored by {name}?",
    ),
    "capital": (
        "What is the capital of {name}?",
        "Which city is the capital of {name}?",
    ),
    "language": (
        "What is the official language of {name}?",
        "Which language is spoken in {name}?",
    ),
    "country": (
        "In which country is {name}?",
        "Which country is {name} in?",
    ),
    "population": (
        "What is the population of {name}?",
        "About how many people live in {name}?",
    ),
    "city": (
        "In which city is {name}?",
        "Where is {name} located?",
    ),
    "founded": (
        "When was {name} founded?",
        "In which year was {name} founded?",
    ),
    "headquarters": (
        "Where is {name} headquartered?",
        "In which city does {name} have its headquarters?",
    ),
    "industry": (
        "What industry is {name} in?",
        "In which industry does {name} operate?",
    ),
}

#: Two-hop questions: (question templates, reasoning template). The reasoning
#: chains two facts that both appear in the entity's own text.
COT: dict[str, tuple[tuple[str, ...], str]] = {
    "birth_country": (
        ("In which country was {name} born?", "What country is {name}'s birthplace in?"),
        "{name} was born in {birth_city}. {birth_city} is in {birth_country}.",
    ),
    "employer_city": (
        (
            "In which city is {name}'s employer headquartered?",
            "Where is the company that {name} works for based?",
        ),
        "{name} works for {employer}. {employer} is headquartered in {employer_city}.",
    ),
    "university_city": (
        (
            "In which city is the university that {name} attended?",
            "In which city did {name} go to university?",
        ),
        "{name} studied at {university}. {university} is in {university_city}.",
    ),
    "residence_country": (
        ("In which country does {name} live?", "Which country is {name}'s home?"),
        "{name} lives in {residence_city}. {residence_city} is in {residence_country}.",
    ),
    "university_country": (
        ("In which country is {name}?", "Which country is {name} located in?"),
        "{name} is in {city}. {city} is in {country}.",
    ),
    "company_country": (
        ("In which country is {name} headquartered?", "In which country is {name} based?"),
        "{name} is headquartered in {city}. {city} is in {country}.",
    ),
}

COT_SUFFIX = "\nLet's think step by step."
COT_THEREFORE = "\nTherefore, the answer is "
MC_OPTIONS_HEADER = "\nOptions:\n- "
MC_OPTION_SEPARATOR = "\n- "
