"""Words for the simulator: intents, phrasings, catalogs, mishearings, responses.

Kept apart from `fpi.simulator.simulate` so the causal model reads as code and this reads
as data. Every tuple here is ordered: the simulator indexes into them with
seeded random integers, so reordering changes the output of a given seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

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


def entry(name: str, misheard: str, similar: str) -> Entity:
    """One catalog item: its name, what an ASR hears instead (`|`-separated), and names close to it."""
    return Entity(name, tuple(misheard.split("|")), tuple(similar.split("|")))


# Titles that exist as both a film/series and an audiobook: routing depends on device.
SHARED_TITLES: tuple[Entity, ...] = (
    entry("harry potter", "harry spotter|hairy potter", "harry potter and the chamber of secrets|harry potter and the goblet of fire"),
    entry("dune", "june|doom", "dune part two|dune messiah"),
    entry("the hobbit", "the hobbyist|the habit", "the hobbit an unexpected journey|the hobbit the battle of the five armies"),
    entry("little women", "little woman|brittle women", "little women 1994|good wives"),
    entry("the martian", "the marshall|the martin", "the martian extended edition|martian chronicles"),
    entry("pride and prejudice", "bride and prejudice|pride and projects", "pride and prejudice and zombies|pride and prejudice 1995"),
    entry("the shining", "the shiny|the signing", "doctor sleep|the shining extended cut"),
)

CATALOGS: dict[str, tuple[Entity, ...]] = {
    "music": (
        entry("taylor swift", "tailor swift|taylor's wife", "taylor swift live|taylor dayne"),
        entry("bohemian rhapsody", "bohemian rap city|bohemian rhapsodies", "bohemian rhapsody live aid|bohemian like you"),
        entry("the beatles", "the beetles|the b tools", "the beatles anthology|beatles for sale"),
        entry("thriller", "filler|thrill her", "thriller 25th anniversary|thriller live"),
        entry("ed sheeran", "ed sharon|head shearing", "ed sheeran acoustic|shape of you"),
        entry("lofi beats", "low five beats|lofi bits", "lofi hip hop radio|lofi jazz"),
        entry("billie eilish", "billy eyelash|billie ellis", "bad guy|billie holiday"),
        entry("coldplay", "cold play|gold play", "coldplay live 2012|viva la vida"),
        entry("jazz for studying", "jazz for studio|jars for studying", "jazz for dinner|study jazz"),
        entry("hotel california", "hotel california a|hotel in california", "hotel california live|hotel costa"),
        entry("despacito", "this pacito|the spa seat o", "despacito remix|mi gente"),
        entry("drake", "drape|great", "drake and josh|nick drake"),
        entry("adele", "a dell|idle", "adele 25|adele live at the royal albert hall"),
        entry("rain sounds", "rein sounds|brain sounds", "rain on a tin roof|ocean sounds"),
    ),
    "video": (
        entry("stranger things", "stranger kings|strange things", "stranger things season 2|strange world"),
        entry("the office", "the offers|the auto fix", "the office uk|office space"),
        entry("oppenheimer", "open heimer|oppenheim", "oppenheimer behind the scenes|the manhattan project"),
        entry("frozen", "frozen peas|frozen two", "frozen 2|frozen fever"),
        entry("breaking bad", "breaking dad|baking bad", "el camino|better call saul"),
        entry("the crown", "the clown|the crowd", "the crown season 4|the crown jewels"),
        entry("top gun maverick", "top gun mavericks|top gun naval rick", "top gun|maverick"),
        entry("bluey", "blue e|bluey's", "bluey season 3|blue's clues"),
        entry("planet earth", "planet birth|planet earth two", "planet earth ii|blue planet"),
        entry("friends", "fiends|french", "friends the reunion|friends with benefits"),
    ),
    "books": (
        entry("atomic habits", "a topic habits|atomic rabbits", "atomic habits summary|tiny habits"),
        entry("where the crawdads sing", "where the crowds sing|where the cordage sing", "where the crawdads sing movie tie in|the crawdad"),
        entry("sapiens", "say pians|sap beans", "sapiens graphic novel|homo deus"),
        entry("the midnight library", "the midnight liberty|the midnight lobby", "the midnight library sample|the library of the dead"),
        entry("educated", "educator|a duke ated", "educated a memoir sample|the educated"),
        entry("project hail mary", "project hale mary|project hell marry", "project hail mary sample|artemis"),
        entry("becoming", "become in|bee coming", "becoming adapted for young readers|the light we carry"),
        entry("the body keeps the score", "the body keeps the store|the bodies keep score", "the body keeps the score workbook|the body"),
        entry("the alchemist", "the alchemy|the al chemist", "the alchemist 25th anniversary|the chemist"),
        entry("thinking fast and slow", "thinking fasten slow|sinking fast and slow", "thinking in bets|fast and slow"),
    ),
    "device": (
        entry("kitchen lights", "kitchen likes|chicken lights", "kitchen light strip|kitchen plug"),
        entry("living room lamp", "living room lamb|living rooms lamp", "living room lights|living room tv"),
        entry("bedroom lights", "bed room likes|bedroom flights", "bedroom lamp|bathroom lights"),
        entry("porch light", "porsche light|torch light", "porch camera|patio lights"),
        entry("fan", "van|fam", "bedroom fan|fan heater"),
        entry("coffee machine", "coffee machines|toffee machine", "kitchen plug|kettle"),
        entry("hallway lights", "hallway likes|hello a lights", "hallway sensor|hall lamp"),
        entry("christmas tree", "christmas three|christmas treat", "christmas lights|tree lamp"),
    ),
    "door": (
        entry("garage door", "garage floor|garage store", "garage light|side gate"),
        entry("front gate", "front game|front great", "front door|back gate"),
        entry("back door", "black door|back doors", "back gate|barn door"),
        entry("blinds", "blonds|lines", "bedroom blinds|curtains"),
    ),
    "city": (
        entry("london", "lund in|london ontario", "london ontario|london kentucky"),
        entry("mumbai", "mum buy|mom bay", "mumbai suburban|navi mumbai"),
        entry("sydney", "sidney|city", "sydney nova scotia|sydney ohio"),
        entry("toronto", "to ronto|toronto's", "toronto ohio|toronto pearson"),
        entry("paris", "harris|paris texas", "paris texas|paris ontario"),
        entry("seattle", "settle|see tl", "seattle tacoma|seattle heights"),
        entry("bangalore", "bang lore|bungalow", "bangalore rural|mangalore"),
        entry("manchester", "man chester|manchester's", "manchester new hampshire|manchester airport"),
        entry("perth", "path|birth", "perth scotland|perth amboy"),
        entry("boston", "bostin|austin", "boston lincolnshire|austin"),
    ),
    "item": (
        entry("paper towels", "paper tails|papers towels", "paper napkins|kitchen roll"),
        entry("oat milk", "oat mill|goat milk", "oat milk barista|almond milk"),
        entry("batteries", "battery's|flatteries", "aa batteries|aaa batteries"),
        entry("dog food", "doc food|dog foot", "puppy food|dog treats"),
        entry("coffee beans", "coffee beams|toffee beans", "ground coffee|coffee pods"),
        entry("toothpaste", "tooth based|two face", "toothbrush|mouthwash"),
        entry("bananas", "bandanas|bananas split", "banana chips|plantains"),
        entry("dish soap", "dish soup|this soap", "dishwasher tablets|hand soap"),
        entry("basmati rice", "bass body rice|basmati ice", "jasmine rice|brown rice"),
        entry("eggs", "legs|x", "egg whites|easter eggs"),
    ),
    "duration": (
        entry("ten minutes", "two minutes|ten minute", "ten minutes|ten minutes"),
        entry("fifteen minutes", "fifty minutes|fifteen minute", "fifteen minutes|fifteen minutes"),
        entry("five minutes", "nine minutes|fine minutes", "five minutes|five minutes"),
        entry("thirty seconds", "thirty seconds|dirty seconds", "thirty seconds|thirty seconds"),
        entry("one hour", "one our|won hour", "one hour|one hour"),
        entry("twenty minutes", "twenty minute|plenty minutes", "twenty minutes|twenty minutes"),
        entry("three minutes", "tree minutes|free minutes", "three minutes|three minutes"),
    ),
    "temperature": (
        entry("seventy degrees", "seventeen degrees|seven degrees", "seventy degrees|seventy degrees"),
        entry("twenty one degrees", "twenty degrees|twenty one agrees", "twenty one degrees|twenty one degrees"),
        entry("sixty eight", "sixty|sixty eighth", "sixty eight|sixty eight"),
        entry("nineteen degrees", "ninety degrees|nineteen agrees", "nineteen degrees|nineteen degrees"),
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
ALREADY_STATES: Mapping[str, str] = MappingProxyType({"TurnOn": "on", "TurnOff": "off", "Open": "open",
                                                       "Close": "closed"})
ALREADY_REPLIES: tuple[str, ...] = ("The {e} is already {state}.", "{e} is already {state}.",
                                    "It looks like the {e} is already {state}.")
"""A device command that changed nothing: the device is (or is believed to be) in that state already."""
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
    """Index arrays over the intents, their templates, the catalogs and the responses.

    The default tables are the narrow vocabulary every existing figure was made
    with; `BROAD_WORDS` extends the same intents, in the same order, with more
    phrasings, catalog items, background speech and replies.
    """

    def __init__(self, intents: tuple[Intent, ...] = (), catalogs: dict[str, tuple[Entity, ...]] | None = None,
                 fragments: tuple[str, ...] = FALSE_WAKE_FRAGMENTS,
                 not_found: dict[str, tuple[str, ...]] | None = None) -> None:
        intents = intents or INTENTS
        catalogs = catalogs or CATALOGS
        not_found = not_found or NOT_FOUND
        n = len(intents)
        if tuple(i.name for i in intents) != INTENT_NAMES or tuple(catalogs) != POOLS:
            raise ValueError("a vocabulary must keep the intents and catalogs of INTENTS and CATALOGS, in order")
        self.intent_domain = np.array([DOMAINS.index(i.domain) for i in intents])
        self.intent_pool = np.array([POOLS.index(i.pool) if i.pool else -1 for i in intents])
        self.intent_resolved = np.array([i.resolved for i in intents])
        self.unsupported = INTENT_NAMES.index(UNSUPPORTED_INTENT)
        self.books, self.video = INTENT_NAMES.index("PlayAudiobook"), INTENT_NAMES.index("PlayVideo")
        width = max(len(i.confusable) for i in intents)
        self.confusable = np.array([[INTENT_NAMES.index(c) for c in (i.confusable * width)[:width]] for i in intents])
        self.n_confusable = np.array([len(i.confusable) for i in intents])
        # Runner-up candidates of a chosen intent: what it is mistaken for and what is mistaken for it.
        near = [sorted({INTENT_NAMES.index(c) for c in i.confusable}
                       | {k for k, other in enumerate(intents) if i.name in other.confusable}) for i in intents]
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
        for k, intent in enumerate(intents):
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
            self.pool_start[p], self.pool_size[p] = len(names), len(catalogs[pool])
            for entity in catalogs[pool]:
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

        with_e = [group([r for r in i.responses if "{e}" in r] or list(i.responses)) for i in intents]
        without = [group([r for r in i.responses if "{e}" not in r] or list(DIDNT_CATCH)) for i in intents]
        self.resp_slot = np.array(with_e)
        self.resp_noslot = np.array(without)
        self.resp_not_found = np.array([group(not_found[d]) for d in DOMAINS])
        self.resp_failed = np.array(group(FAILED_RESPONSES))
        self.resp_offline = np.array(group(OFFLINE_RESPONSES))
        self.resp_didnt_catch = np.array(group(DIDNT_CATCH))
        self.resp_false_wake = np.array(group(FALSE_WAKE_REPLIES))
        self.resp_unavailable = np.array(group(UNAVAILABLE_RESPONSES))
        self.resp_text = _objects(table)
        self.fragments = _objects(list(fragments))
        self.prefixes = _objects(list(PREFIX_REPHRASE))
        self.repeat_prefixes = _objects(list(PREFIX_REPEAT_AFTER_CORRECT))
        self.domain_names = _objects(list(DOMAINS))
        self.intent_names = _objects(list(INTENT_NAMES))


WORDS = WordTables()
