"""Words for the simulator: intents, phrasings, catalogs, mishearings, responses.

Kept apart from `fpi.simulate` so the causal model reads as code and this reads
as data. Every tuple here is ordered: the simulator indexes into them with
seeded random integers, so reordering changes the output of a given seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Intent:
    """One thing a user can ask for, with how they say it and what comes back.

    `templates` use `{e}` for the slot; `explicit` templates name the medium
    ("the audiobook of ...") and so survive the shared-title routing ambiguity.
    `garbled` gives, per slot-less template, what a major ASR error turns it into.
    `pool` names the catalog the slot is filled from; `resolved` says whether
    entity resolution runs on it (durations and temperatures are parsed, not resolved).
    """

    domain: str
    name: str
    templates: tuple[str, ...]
    explicit: tuple[str, ...] = ()
    garbled: tuple[str, ...] = ()
    pool: str | None = None
    resolved: bool = False
    responses: tuple[str, ...] = ("OK.",)
    confusable: tuple[str, ...] = ()  # intents NLU mistakes this one for


@dataclass(frozen=True)
class Entity:
    """A catalog item, how ASR mishears it, and the neighbours ER confuses it with."""

    name: str
    misheard: tuple[str, ...]
    similar: tuple[str, ...]


def _e(name: str, misheard: str, similar: str) -> Entity:
    return Entity(name, tuple(misheard.split("|")), tuple(similar.split("|")))


# Titles that exist as both a film/series and an audiobook: routing depends on device.
SHARED_TITLES: tuple[Entity, ...] = (
    _e("harry potter", "harry spotter|hairy potter", "harry potter and the chamber of secrets|harry potter and the goblet of fire"),
    _e("dune", "june|doom", "dune part two|dune messiah"),
    _e("the hobbit", "the hobbyist|the habit", "the hobbit an unexpected journey|the hobbit the battle of the five armies"),
    _e("little women", "little woman|brittle women", "little women 1994|good wives"),
    _e("the martian", "the marshall|the martin", "the martian extended edition|martian chronicles"),
    _e("pride and prejudice", "bride and prejudice|pride and projects", "pride and prejudice and zombies|pride and prejudice 1995"),
    _e("the shining", "the shiny|the signing", "doctor sleep|the shining extended cut"),
)

CATALOGS: dict[str, tuple[Entity, ...]] = {
    "music": (
        _e("taylor swift", "tailor swift|taylor's wife", "taylor swift live|taylor dayne"),
        _e("bohemian rhapsody", "bohemian rap city|bohemian rhapsodies", "bohemian rhapsody live aid|bohemian like you"),
        _e("the beatles", "the beetles|the b tools", "the beatles anthology|beatles for sale"),
        _e("thriller", "filler|thrill her", "thriller 25th anniversary|thriller live"),
        _e("ed sheeran", "ed sharon|head shearing", "ed sheeran acoustic|shape of you"),
        _e("lofi beats", "low five beats|lofi bits", "lofi hip hop radio|lofi jazz"),
        _e("billie eilish", "billy eyelash|billie ellis", "bad guy|billie holiday"),
        _e("coldplay", "cold play|gold play", "coldplay live 2012|viva la vida"),
        _e("jazz for studying", "jazz for studio|jars for studying", "jazz for dinner|study jazz"),
        _e("hotel california", "hotel california a|hotel in california", "hotel california live|hotel costa"),
        _e("despacito", "this pacito|the spa seat o", "despacito remix|mi gente"),
        _e("drake", "drape|great", "drake and josh|nick drake"),
        _e("adele", "a dell|idle", "adele 25|adele live at the royal albert hall"),
        _e("rain sounds", "rein sounds|brain sounds", "rain on a tin roof|ocean sounds"),
    ),
    "video": (
        _e("stranger things", "stranger kings|strange things", "stranger things season 2|strange world"),
        _e("the office", "the offers|the auto fix", "the office uk|office space"),
        _e("oppenheimer", "open heimer|oppenheim", "oppenheimer behind the scenes|the manhattan project"),
        _e("frozen", "frozen peas|frozen two", "frozen 2|frozen fever"),
        _e("breaking bad", "breaking dad|baking bad", "el camino|better call saul"),
        _e("the crown", "the clown|the crowd", "the crown season 4|the crown jewels"),
        _e("top gun maverick", "top gun mavericks|top gun naval rick", "top gun|maverick"),
        _e("bluey", "blue e|bluey's", "bluey season 3|blue's clues"),
        _e("planet earth", "planet birth|planet earth two", "planet earth ii|blue planet"),
        _e("friends", "fiends|french", "friends the reunion|friends with benefits"),
    ),
    "books": (
        _e("atomic habits", "a topic habits|atomic rabbits", "atomic habits summary|tiny habits"),
        _e("where the crawdads sing", "where the crowds sing|where the cordage sing", "where the crawdads sing movie tie in|the crawdad"),
        _e("sapiens", "say pians|sap beans", "sapiens graphic novel|homo deus"),
        _e("the midnight library", "the midnight liberty|the midnight lobby", "the midnight library sample|the library of the dead"),
        _e("educated", "educator|a duke ated", "educated a memoir sample|the educated"),
        _e("project hail mary", "project hale mary|project hell marry", "project hail mary sample|artemis"),
        _e("becoming", "become in|bee coming", "becoming adapted for young readers|the light we carry"),
        _e("the body keeps the score", "the body keeps the store|the bodies keep score", "the body keeps the score workbook|the body"),
        _e("the alchemist", "the alchemy|the al chemist", "the alchemist 25th anniversary|the chemist"),
        _e("thinking fast and slow", "thinking fasten slow|sinking fast and slow", "thinking in bets|fast and slow"),
    ),
    "device": (
        _e("kitchen lights", "kitchen likes|chicken lights", "kitchen light strip|kitchen plug"),
        _e("living room lamp", "living room lamb|living rooms lamp", "living room lights|living room tv"),
        _e("bedroom lights", "bed room likes|bedroom flights", "bedroom lamp|bathroom lights"),
        _e("porch light", "porsche light|torch light", "porch camera|patio lights"),
        _e("fan", "van|fam", "bedroom fan|fan heater"),
        _e("coffee machine", "coffee machines|toffee machine", "kitchen plug|kettle"),
        _e("hallway lights", "hallway likes|hello a lights", "hallway sensor|hall lamp"),
        _e("christmas tree", "christmas three|christmas treat", "christmas lights|tree lamp"),
    ),
    "door": (
        _e("garage door", "garage floor|garage store", "garage light|side gate"),
        _e("front gate", "front game|front great", "front door|back gate"),
        _e("back door", "black door|back doors", "back gate|barn door"),
        _e("blinds", "blonds|lines", "bedroom blinds|curtains"),
    ),
    "city": (
        _e("london", "lund in|london ontario", "london ontario|london kentucky"),
        _e("mumbai", "mum buy|mom bay", "mumbai suburban|navi mumbai"),
        _e("sydney", "sidney|city", "sydney nova scotia|sydney ohio"),
        _e("toronto", "to ronto|toronto's", "toronto ohio|toronto pearson"),
        _e("paris", "harris|paris texas", "paris texas|paris ontario"),
        _e("seattle", "settle|see tl", "seattle tacoma|seattle heights"),
        _e("bangalore", "bang lore|bungalow", "bangalore rural|mangalore"),
        _e("manchester", "man chester|manchester's", "manchester new hampshire|manchester airport"),
        _e("perth", "path|birth", "perth scotland|perth amboy"),
        _e("boston", "bostin|austin", "boston lincolnshire|austin"),
    ),
    "item": (
        _e("paper towels", "paper tails|papers towels", "paper napkins|kitchen roll"),
        _e("oat milk", "oat mill|goat milk", "oat milk barista|almond milk"),
        _e("batteries", "battery's|flatteries", "aa batteries|aaa batteries"),
        _e("dog food", "doc food|dog foot", "puppy food|dog treats"),
        _e("coffee beans", "coffee beams|toffee beans", "ground coffee|coffee pods"),
        _e("toothpaste", "tooth based|two face", "toothbrush|mouthwash"),
        _e("bananas", "bandanas|bananas split", "banana chips|plantains"),
        _e("dish soap", "dish soup|this soap", "dishwasher tablets|hand soap"),
        _e("basmati rice", "bass body rice|basmati ice", "jasmine rice|brown rice"),
        _e("eggs", "legs|x", "egg whites|easter eggs"),
    ),
    "duration": (
        _e("ten minutes", "two minutes|ten minute", "ten minutes|ten minutes"),
        _e("fifteen minutes", "fifty minutes|fifteen minute", "fifteen minutes|fifteen minutes"),
        _e("five minutes", "nine minutes|fine minutes", "five minutes|five minutes"),
        _e("thirty seconds", "thirty seconds|dirty seconds", "thirty seconds|thirty seconds"),
        _e("one hour", "one our|won hour", "one hour|one hour"),
        _e("twenty minutes", "twenty minute|plenty minutes", "twenty minutes|twenty minutes"),
        _e("three minutes", "tree minutes|free minutes", "three minutes|three minutes"),
    ),
    "temperature": (
        _e("seventy degrees", "seventeen degrees|seven degrees", "seventy degrees|seventy degrees"),
        _e("twenty one degrees", "twenty degrees|twenty one agrees", "twenty one degrees|twenty one degrees"),
        _e("sixty eight", "sixty|sixty eighth", "sixty eight|sixty eight"),
        _e("nineteen degrees", "ninety degrees|nineteen agrees", "nineteen degrees|nineteen degrees"),
    ),
}
CATALOGS["video"] = CATALOGS["video"] + SHARED_TITLES
CATALOGS["books"] = CATALOGS["books"] + SHARED_TITLES

UNSUPPORTED_DOMAIN = "general"
UNSUPPORTED_INTENT = "Unsupported"

INTENTS: tuple[Intent, ...] = (
    Intent("music", "PlayMusic",
           ("play {e}", "play some {e}", "put on {e}", "i want to hear {e}", "can you play {e} please", "shuffle {e}"),
           explicit=("play the song {e}", "play music by {e}"),
           pool="music", resolved=True,
           responses=("Playing {e}.", "Here's {e} on Spotify.", "Shuffling songs by {e}.", "Playing {e} from your library."),
           confusable=("PlayAudiobook", "PlayVideo")),
    Intent("video", "PlayVideo",
           ("play {e}", "watch {e}", "put on {e}", "i want to watch {e}", "show me {e}"),
           explicit=("play the movie {e}", "play the show {e}", "watch the film {e}"),
           pool="video", resolved=True,
           responses=("Playing {e}.", "Here's {e}.", "Starting {e} from where you left off.", "OK, {e} on Prime Video."),
           confusable=("PlayAudiobook", "PlayMusic")),
    Intent("books", "PlayAudiobook",
           ("play {e}", "continue {e}", "resume {e}", "put on {e}"),
           explicit=("read {e}", "read me {e}", "play the audiobook {e}", "play the audiobook of {e}", "read the book {e}"),
           pool="books", resolved=True,
           responses=("Here's {e}, the audiobook.", "Resuming {e}.", "Playing the audiobook {e}.", "Picking up {e} where you left off."),
           confusable=("PlayVideo", "PlayMusic")),
    Intent("smart_home", "TurnOn",
           ("turn on the {e}", "switch on the {e}", "{e} on", "turn the {e} on please", "can you turn on the {e}"),
           pool="device", resolved=True,
           responses=("OK.", "Turning on the {e}.", "OK, I turned on the {e}."),
           confusable=("TurnOff", "Open")),
    Intent("smart_home", "TurnOff",
           ("turn off the {e}", "switch off the {e}", "{e} off", "turn the {e} off", "kill the {e}"),
           pool="device", resolved=True,
           responses=("OK.", "Turning off the {e}.", "OK, I turned off the {e}."),
           confusable=("TurnOn", "Close")),
    Intent("smart_home", "Open",
           ("open the {e}", "open {e}", "can you open the {e}", "raise the {e}"),
           pool="door", resolved=True,
           responses=("Opening the {e}.", "OK, opening the {e} now."),
           confusable=("Close", "TurnOn")),
    Intent("smart_home", "Close",
           ("close the {e}", "shut the {e}", "lower the {e}", "close {e} please"),
           pool="door", resolved=True,
           responses=("Closing the {e}.", "OK, closing the {e} now."),
           confusable=("Open", "TurnOff")),
    Intent("smart_home", "SetTemperature",
           ("set the temperature to {e}", "set the thermostat to {e}", "make it {e} in here", "change the heat to {e}"),
           pool="temperature", resolved=False,
           responses=("Setting the thermostat to {e}.", "OK, heating to {e}."),
           confusable=("GetWeather",)),
    Intent("weather", "GetWeather",
           ("what's the weather in {e}", "how hot is it in {e}", "what's the forecast for {e}", "is it raining in {e}",
            "what's the weather", "will it rain today", "what's the temperature outside", "do i need an umbrella"),
           garbled=("what's the feather", "will it train today", "what's the temperature outsider", "do i need an umbrella stand"),
           pool="city", resolved=True,
           responses=("Right now in {e} it's 18 degrees and cloudy.", "In {e} today, expect rain with a high of 14.",
                      "It's currently 25 degrees and sunny in {e}.", "Expect showers this afternoon with a high of 16.",
                      "Right now it's 9 degrees with clear skies.", "Today: mostly sunny, high of 22, low of 13.",
                      "It'll be windy this evening, around 11 degrees.", "No rain expected today."),
           confusable=("SetTemperature", "PlayMusic")),
    Intent("timers", "SetTimer",
           ("set a timer for {e}", "set a {e} timer", "timer for {e}", "start a timer for {e} please"),
           pool="duration", resolved=False,
           responses=("{e}, starting now.", "Timer set for {e}.", "OK, {e} timer."),
           confusable=("CancelTimer",)),
    Intent("timers", "CancelTimer",
           ("cancel my {e} timer", "stop the {e} timer", "cancel the timer", "stop the timer", "turn off the timer"),
           garbled=("council the timer", "stop the time her", "turn off the time"),
           pool="duration", resolved=False,
           responses=("Your {e} timer is cancelled.", "Timer cancelled.", "OK, I've stopped the {e} timer."),
           confusable=("SetTimer", "TurnOff")),
    Intent("shopping", "AddToList",
           ("add {e} to my shopping list", "put {e} on the list", "add {e} to the list", "we need {e}"),
           pool="item", resolved=True,
           responses=("I've added {e} to your shopping list.", "I put {e} on your list.", "Added {e}."),
           confusable=("Buy",)),
    Intent("shopping", "Buy",
           ("buy {e}", "order {e}", "reorder {e}", "i need to order more {e}"),
           pool="item", resolved=True,
           responses=("I found {e} for $12.99. Should I order it?", "Your usual {e} is $8.49. Want me to order it?",
                      "OK, ordering {e}. It'll arrive Thursday."),
           confusable=("AddToList",)),
    Intent(UNSUPPORTED_DOMAIN, UNSUPPORTED_INTENT,
           ("make me a sandwich", "do my homework", "book me a flight to mars", "wash the dishes", "walk the dog",
            "drive me to work", "clean my room", "tell my boss i'm sick", "fix my car", "take out the trash"),
           responses=("Sorry, I can't help with that.", "Hmm, I don't know that one.", "Sorry, I can't do that yet."),
           confusable=("AddToList", "TurnOn")),
)

# Devices a domain is asked on, as weights over INTENTS order (the user's goal mix).
GOAL_WEIGHTS: dict[str, tuple[float, ...]] = {
    #                PlayMusic Video Book On  Off  Open Close Temp Weath SetT CanT Add  Buy  Unsup
    "speaker":        (0.20, 0.02, 0.07, 0.09, 0.08, 0.03, 0.03, 0.03, 0.14, 0.10, 0.04, 0.08, 0.04, 0.05),
    "speaker_screen": (0.15, 0.14, 0.09, 0.07, 0.06, 0.02, 0.02, 0.02, 0.12, 0.12, 0.04, 0.07, 0.03, 0.05),
    "tv":             (0.10, 0.46, 0.09, 0.05, 0.05, 0.01, 0.01, 0.02, 0.07, 0.02, 0.01, 0.03, 0.03, 0.05),
    "car":            (0.30, 0.01, 0.14, 0.02, 0.01, 0.07, 0.06, 0.02, 0.17, 0.02, 0.01, 0.07, 0.03, 0.07),
    "phone":          (0.18, 0.08, 0.10, 0.08, 0.07, 0.03, 0.03, 0.03, 0.14, 0.09, 0.03, 0.06, 0.03, 0.06),
}

PREFIX_REPHRASE: tuple[str, ...] = ("", "", "i said ", "no ", "no i said ", "", "please ", "i asked you to ")
PREFIX_REPEAT_AFTER_CORRECT: tuple[str, ...] = ("", "", "again ", "")

FALSE_WAKE_FRAGMENTS: tuple[str, ...] = (
    "and then he said that", "no i think it's in the", "previously on", "breaking news tonight",
    "are you coming to dinner", "what did she say", "let's go", "i don't know about that",
    "call me later", "that's what i", "in tonight's episode", "you know what", "okay so", "yeah",
    "the weather across the", "mom can you", "play it again sam", "turn it off", "seriously",
    "and the winner is", "it's a lexus", "i'll ask her", "hey what", "no no no", "stop it",
)

NOT_FOUND: dict[str, tuple[str, ...]] = {
    "music": ("Sorry, I couldn't find {e}.", "I couldn't find any songs matching {e}."),
    "video": ("Sorry, I couldn't find {e}.", "Hmm, I can't find {e} on your services."),
    "books": ("Sorry, I couldn't find a book called {e}.", "I can't find {e} in your library."),
    "smart_home": ("Hmm, I couldn't find a device called {e}.", "Several devices share that name. Which one did you want?"),
    "weather": ("Sorry, I don't know where {e} is.", "Which {e} did you mean?"),
    "timers": ("Sorry, I didn't get that.",),
    "shopping": ("Sorry, I couldn't find {e}.", "I didn't find {e}. Try another name?"),
    UNSUPPORTED_DOMAIN: ("Sorry, I didn't get that.",),
}

FAILED_RESPONSES: tuple[str, ...] = (
    "Sorry, something went wrong.", "Sorry, I'm having trouble right now. Please try again later.",
    "Sorry, something went wrong.",
)
OFFLINE_RESPONSES: tuple[str, ...] = ("The {e} isn't responding.", "The {e} is offline. Please check its connection.")
DIDNT_CATCH: tuple[str, ...] = ("Sorry, I didn't catch that.", "Sorry, I didn't get that.")
FALSE_WAKE_REPLIES: tuple[str, ...] = ("Sorry, I'm not sure about that.", "Hmm, I don't know that one.")
# Correct turns sometimes get an apologetic answer too: the item really is unavailable.
UNAVAILABLE_RESPONSES: tuple[str, ...] = ("Sorry, {e} isn't available right now.", "Sorry, something went wrong.")

# Words an ASR commonly drops or slips on without changing the meaning.
MINOR_DROPS: tuple[str, ...] = (" the ", " a ", " my ", " some ", "please ", " please", " can you ", " to ")
MINOR_SWAPS: dict[str, str] = {
    "play": "plays", "watch": "what's", "read": "red", "order": "ordered", "buy": "by", "for": "four",
    "continue": "continued", "resume": "resumes", "shuffle": "shuffled", "raise": "raised", "on": "and",
    "off": "of", "timer": "timers", "in": "and", "show": "so", "make": "made", "we": "wee",
}


# ---------------------------------------------------------------------------
# The words above compiled once into index arrays, so the simulator can pick
# phrasings, entities and responses for a million turns with numpy indexing.

DOMAINS: tuple[str, ...] = tuple(dict.fromkeys(i.domain for i in INTENTS))
INTENT_NAMES: tuple[str, ...] = tuple(i.name for i in INTENTS)
POOLS: tuple[str, ...] = tuple(CATALOGS)


def _minor(text: str) -> str:
    """What a harmless ASR slip does to a phrasing: drop a function word, or mangle a suffix."""
    padded = f" {text} "
    for word in MINOR_DROPS:
        if word in padded:
            return padded.replace(word, " ", 1).strip()
    words = text.split(" ")
    for k, word in enumerate(words):
        if word in MINOR_SWAPS:
            return " ".join(words[:k] + [MINOR_SWAPS[word]] + words[k + 1:])
    return text


def _objects(items: list[str] | list[str | None]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


class WordTables:
    """Index arrays over INTENTS, their templates, the catalogs and the responses."""

    def __init__(self) -> None:
        n = len(INTENTS)
        self.intent_domain = np.array([DOMAINS.index(i.domain) for i in INTENTS])
        self.intent_pool = np.array([POOLS.index(i.pool) if i.pool else -1 for i in INTENTS])
        self.intent_resolved = np.array([i.resolved for i in INTENTS])
        self.unsupported = INTENT_NAMES.index(UNSUPPORTED_INTENT)
        self.books, self.video = INTENT_NAMES.index("PlayAudiobook"), INTENT_NAMES.index("PlayVideo")
        width = max(len(i.confusable) for i in INTENTS)
        self.confusable = np.array([[INTENT_NAMES.index(c) for c in (i.confusable * width)[:width]] for i in INTENTS])
        self.n_confusable = np.array([len(i.confusable) for i in INTENTS])
        # Runner-up candidates of a chosen intent: what it is mistaken for and what is mistaken for it.
        near = [sorted({INTENT_NAMES.index(c) for c in i.confusable}
                       | {k for k, other in enumerate(INTENTS) if i.name in other.confusable}) for i in INTENTS]
        wide = max(len(x) for x in near)
        self.neighbours = np.array([(x * wide)[:wide] for x in near])
        self.n_neighbours = np.array([len(x) for x in near])

        # Templates per intent laid out as: plain slot, explicit slot, slot-less.
        text: list[str] = []
        garble: list[str | None] = []
        slot: list[bool] = []
        explicit: list[bool] = []
        self.tpl_start, self.tpl_count = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.slot_start, self.slot_count = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.explicit_start, self.explicit_count = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.noslot_start, self.noslot_count = np.zeros(n, np.int64), np.zeros(n, np.int64)
        for k, intent in enumerate(INTENTS):
            plain = [t for t in intent.templates if "{e}" in t]
            bare = [t for t in intent.templates if "{e}" not in t]
            self.tpl_start[k] = self.slot_start[k] = len(text)
            self.slot_count[k] = len(plain) + len(intent.explicit)
            self.explicit_start[k], self.explicit_count[k] = len(text) + len(plain), len(intent.explicit)
            self.noslot_start[k], self.noslot_count[k] = len(text) + self.slot_count[k], len(bare)
            self.tpl_count[k] = self.slot_count[k] + len(bare)
            text += plain + list(intent.explicit) + bare
            garbles = list(intent.garbled) + [None] * len(bare)
            garble += [None] * int(self.slot_count[k]) + garbles[: len(bare)]
            slot += [True] * int(self.slot_count[k]) + [False] * len(bare)
            explicit += [False] * len(plain) + [True] * len(intent.explicit) + [False] * len(bare)
        self.tpl_text = _objects(text)
        self.tpl_minor = _objects([_minor(t) for t in text])
        self.tpl_garble = _objects(garble)
        self.tpl_has_garble = np.array([g is not None for g in garble])
        self.tpl_slot = np.array(slot)
        self.tpl_explicit = np.array(explicit)

        names: list[str] = []
        self.pool_start = np.zeros(len(POOLS), np.int64)
        self.pool_size = np.zeros(len(POOLS), np.int64)
        shared_names = {e.name for e in SHARED_TITLES}
        mis, sim = [], []
        for p, pool in enumerate(POOLS):
            self.pool_start[p], self.pool_size[p] = len(names), len(CATALOGS[pool])
            for entity in CATALOGS[pool]:
                names.append(entity.name)
                mis.append((entity.misheard * 2)[:2])
                sim.append((entity.similar * 2)[:2])
        self.ent_name = _objects(names)
        self.ent_shared = np.array([x in shared_names for x in names])
        self.ent_misheard = np.array(mis, dtype=object)
        self.ent_similar = np.array(sim, dtype=object)

        # Responses: one flat table, addressed by (group start, group size).
        table: list[str] = []

        def group(items: tuple[str, ...] | list[str]) -> tuple[int, int]:
            table.extend(items)
            return len(table) - len(items), len(items)

        with_e = [group([r for r in i.responses if "{e}" in r] or list(i.responses)) for i in INTENTS]
        without = [group([r for r in i.responses if "{e}" not in r] or list(DIDNT_CATCH)) for i in INTENTS]
        self.resp_slot = np.array(with_e)
        self.resp_noslot = np.array(without)
        self.resp_not_found = np.array([group(NOT_FOUND[d]) for d in DOMAINS])
        self.resp_failed = np.array(group(FAILED_RESPONSES))
        self.resp_offline = np.array(group(OFFLINE_RESPONSES))
        self.resp_didnt_catch = np.array(group(DIDNT_CATCH))
        self.resp_false_wake = np.array(group(FALSE_WAKE_REPLIES))
        self.resp_unavailable = np.array(group(UNAVAILABLE_RESPONSES))
        self.resp_text = _objects(table)
        self.fragments = _objects(list(FALSE_WAKE_FRAGMENTS))
        self.prefixes = _objects(list(PREFIX_REPHRASE))
        self.repeat_prefixes = _objects(list(PREFIX_REPEAT_AFTER_CORRECT))
        self.domain_names = _objects(list(DOMAINS))
        self.intent_names = _objects(list(INTENT_NAMES))


WORDS = WordTables()
