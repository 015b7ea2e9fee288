"""A small, fixed retrieval set for measuring how much quantised search loses against float search.

Documents are generated from slot tables so that there are many near neighbours (the same people,
actions and places recombined), which is where coarse quantisation hurts first. Each query rewords
one document with synonyms, so float search has a clear best hit and a crowded tail behind it.
"""

from __future__ import annotations

# (phrase in documents, paraphrase in queries)
WHO = [
    ("a software engineer", "a programmer"), ("the city council", "the local government"),
    ("my neighbour", "the person next door"), ("a marine biologist", "an ocean scientist"),
    ("the football team", "the soccer squad"), ("an old fisherman", "an elderly angler"),
    ("the startup", "the young company"), ("a jazz pianist", "a jazz musician"),
    ("the museum", "the gallery"), ("a nurse", "a hospital worker"),
    ("the farmer", "the grower"), ("a retired teacher", "a former schoolteacher"),
]
DID = [
    ("repaired", "the broken bicycle", "fixed", "the damaged bike"),
    ("studied", "coral reefs", "researched", "reef ecosystems"),
    ("painted", "a mural of sunflowers", "decorated a wall with", "a sunflower painting"),
    ("sold", "fresh strawberries", "offered", "ripe berries for sale"),
    ("cancelled", "the summer festival", "called off", "the July celebration"),
    ("wrote", "a book about volcanoes", "published", "a volume on eruptions"),
    ("planted", "two hundred oak trees", "put in the ground", "many young oaks"),
    ("lost", "the championship final", "was defeated in", "the title match"),
    ("launched", "a budgeting app", "released", "a personal finance application"),
    ("taught", "children to swim", "gave lessons to", "kids learning swimming"),
    ("rebuilt", "the wooden bridge", "reconstructed", "the timber footbridge"),
    ("recorded", "an album of old folk songs", "made a recording of", "traditional ballads"),
    ("adopted", "a three-legged dog", "took in", "a disabled puppy"),
    ("baked", "sourdough bread", "made", "naturally leavened loaves"),
]
WHERE = [
    ("in Lisbon", "in Portugal's capital"), ("after the storm", "once the bad weather passed"),
    ("last winter", "during the cold months last year"), ("near the harbour", "close to the port"),
    ("for the first time", "as a first"), ("despite the heavy rain", "even though it poured"),
    ("in a small village", "in a tiny hamlet"), ("on a tight budget", "with very little money"),
]
# Documents that share no slots with the rest, so the corpus is not all one template.
FREE = [
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "The stock market fell sharply after the central bank raised interest rates.",
    "Regular stretching reduces the risk of muscle injuries in runners.",
    "The Great Wall of China was built over many centuries by several dynasties.",
    "A good night's sleep improves memory and concentration.",
    "Electric cars are cheaper to run than petrol cars in most countries.",
    "The recipe calls for two eggs, a cup of flour and a pinch of salt.",
    "Mount Everest is the highest mountain above sea level.",
    "Python is a popular programming language for data analysis.",
    "The train to Berlin was delayed by forty minutes because of a signal failure.",
    "Honeybees communicate the location of flowers with a waggle dance.",
    "Vaccines train the immune system to recognise a pathogen.",
    "The novel follows a detective investigating a murder in Victorian London.",
    "Solar panels convert sunlight directly into electricity.",
    "The restaurant is closed on Mondays and opens at noon on weekends.",
    "Chess players study openings to gain an early advantage.",
    "Drinking enough water matters most on hot summer days.",
    "The password must contain at least twelve characters and one digit.",
    "Whales are mammals that breathe air through a blowhole.",
    "The library extended its opening hours during the exam period.",
    "Interest rates on savings accounts are higher this year.",
    "The concert was sold out within minutes of tickets going on sale.",
    "Glaciers in the Alps are shrinking as temperatures rise.",
    "Our cat sleeps for most of the day and hunts at night.",
]


def documents() -> list[str]:
    """About 200 distinct documents: recombined slots plus the free-standing sentences."""
    docs: list[str] = []
    seen: set[str] = set()
    i = 0
    while len(docs) < 200 - len(FREE):
        who, did, where = WHO[i % len(WHO)], DID[(i * 5) % len(DID)], WHERE[(i * 3 + i // len(WHO)) % len(WHERE)]
        text = f"{who[0][0].upper()}{who[0][1:]} {did[0]} {did[1]} {where[0]}."
        if text not in seen:
            seen.add(text)
            docs.append(text)
        i += 1
    return docs + FREE


def queries() -> list[str]:
    """30 queries: 24 reworded recombined documents and 6 questions about the free sentences."""
    docs = documents()
    out: list[str] = []
    for doc in docs[: 200 - len(FREE)][::5][:24]:
        who = next(w for w in WHO if doc.lower().startswith(w[0].lower()))
        did = next(d for d in DID if f" {d[0]} {d[1]} " in doc)
        where = next(w for w in WHERE if doc.endswith(f"{w[0]}."))
        out.append(f"Which {who[1].split(' ', 1)[1]} {did[2]} {did[3]} {where[1]}?")
    out += [
        "How do plants make food from sunlight?", "Why did share prices drop?", "How tall is the tallest peak?",
        "Which language do data scientists use?", "How do bees tell each other where flowers are?",
        "Are ice fields in the mountains melting?",
    ]
    return out
