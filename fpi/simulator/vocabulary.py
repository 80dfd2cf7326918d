"""A broader vocabulary for randomised pipelines (`PipelineProfile.vocabulary`).

The same intents and catalogs as `fpi.simulator.templates`, in the same order, with more
ways to say and answer each, so a model trained on many pipelines learns cues that do not
hang on a handful of phrasings; and catalogs of names invented per pipeline (`invented_words`).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from fpi.simulator.templates import (
    CATALOGS, FALSE_WAKE_FRAGMENTS, INTENTS, NOT_FOUND, SHARED_TITLES, UNSUPPORTED_INTENT, Entity, Intent, WordTables,
    entry,
)


MORE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "PlayMusic": ("could you play {e}", "play {e} for me", "let's hear {e}", "start playing {e}", "play me some {e}",
                  "i'd like to listen to {e}", "put some {e} on", "play songs by {e}", "turn on {e}", "listen to {e}"),
    "PlayVideo": ("could you put on {e}", "start {e}", "let's watch {e}", "play the next episode of {e}",
                  "i'd like to see {e}", "find {e}", "open {e}", "stream {e}"),
    "PlayAudiobook": ("read {e} to me", "keep reading {e}", "go on with {e}", "start the book {e}", "listen to {e}",
                      "carry on with {e}"),
    "TurnOn": ("power on the {e}", "start the {e}", "could you switch the {e} on", "activate the {e}",
               "put the {e} on", "{e} on please"),
    "TurnOff": ("power off the {e}", "switch the {e} off", "shut off the {e}", "stop the {e}", "deactivate the {e}",
                "turn {e} off now"),
    "Open": ("open up the {e}", "lift the {e}", "could you open the {e} please", "{e} open"),
    "Close": ("shut the {e} please", "close up the {e}", "pull down the {e}", "{e} closed"),
    "SetTemperature": ("turn the heating to {e}", "i want it at {e}", "warm it up to {e}", "thermostat to {e}",
                       "cool it down to {e}"),
    "GetWeather": ("weather in {e}", "what's it like outside in {e}", "tell me the weather for {e}",
                   "is it cold in {e}", "will it snow in {e} tomorrow", "how's the weather", "is it going to be sunny",
                   "what's it like outside", "weather please", "what's the weather tomorrow"),
    "SetTimer": ("{e} timer please", "can you time {e}", "countdown {e}", "remind me in {e}",
                 "start a {e} countdown"),
    "CancelTimer": ("cancel the {e} one", "never mind the timer", "delete the timer", "clear my timers"),
    "AddToList": ("add {e}", "remember to buy {e}", "put {e} on my shopping list", "write down {e}",
                  "we're out of {e}"),
    "Buy": ("get me {e}", "order some {e}", "can you buy {e}", "buy more {e}", "add {e} to my cart"),
    "Unsupported": ("what's the meaning of life", "call a taxi", "translate this into klingon", "pay my rent",
                    "send a fax", "paint the fence", "teach me to juggle", "water the plants"),
}
MORE_RESPONSES: dict[str, tuple[str, ...]] = {
    "PlayMusic": ("Now playing {e}.", "{e}, coming up.", "Sure, here's {e}."),
    "PlayVideo": ("Now showing {e}.", "Here it is: {e}."),
    "PlayAudiobook": ("Continuing {e}.", "Here's chapter one of {e}."),
    "TurnOn": ("Done.", "The {e} is on.", "Sure."),
    "TurnOff": ("Done.", "The {e} is off."),
    "Open": ("Done.", "The {e} is opening."),
    "Close": ("Done.", "The {e} is closing."),
    "SetTemperature": ("Thermostat set to {e}.", "Done, {e}."),
    "GetWeather": ("It's 12 degrees and overcast.", "Currently {e} has light rain.", "Expect sun in {e} today.",
                   "Tomorrow looks dry, high of 19."),
    "SetTimer": ("Done. {e}.", "Counting down {e}."),
    "CancelTimer": ("Done.", "The {e} timer is off."),
    "AddToList": ("{e} is on your list.", "Got it, {e}."),
    "Buy": ("{e} is in your basket. Want to check out?", "I can order {e} for $5.99. Go ahead?"),
    "Unsupported": ("I can't do that.", "That's not something I can help with.", "I'm not able to do that yet."),
}
MORE_ENTITIES: dict[str, tuple[str, ...]] = {
    "music": ("the rolling stones", "miles davis", "frank sinatra", "classical piano", "dua lipa", "summer hits",
              "abba", "bruno mars", "workout mix", "beethoven"),
    "video": ("the mandalorian", "finding nemo", "the great british bake off", "succession", "jurassic park",
              "toy story", "the simpsons", "wednesday"),
    "books": ("the hunger games", "the great gatsby", "a brief history of time", "the silent patient",
              "nineteen eighty four", "the kite runner", "gone girl", "the road"),
    "device": ("desk lamp", "garden lights", "air purifier", "heater", "nightlight", "kettle", "tv backlight"),
    "door": ("curtains", "side gate", "shutters", "skylight"),
    "city": ("chicago", "dublin", "berlin", "tokyo", "nairobi", "auckland", "vancouver", "madrid", "denver"),
    "item": ("olive oil", "laundry detergent", "trash bags", "orange juice", "cat litter", "sparkling water",
             "tomatoes", "bread", "light bulbs", "sunscreen"),
    "duration": ("two hours", "forty five minutes", "ninety seconds", "eight minutes"),
    "temperature": ("twenty two degrees", "seventy two", "sixty five degrees", "eighteen degrees"),
}
# How a catalog writes out one of several items with the same name: versions, years, places.
ENTITY_DETAILS: dict[str, tuple[str, ...]] = {
    "music": (" (live)", " (remastered)", " (acoustic)", " (radio edit)", " (deluxe)"),
    "video": (" (1999)", " (2021)", " (extended)", " (dubbed)", " (season 1)"),
    "books": (" (abridged)", " (unabridged)", " (sample)", " (dramatised)"),
    "device": (" (upstairs)", " (downstairs)", " 2"),
    "door": (" (north)", " (side)"),
    "city": (", us", ", uk", ", canada", ", australia", ", india"),
    "item": (" (large)", " (pack of 6)", " (organic)", " (store brand)"),
    "duration": ("",),
    "temperature": ("",),
}
# Television, radio and people talking near the device: what a false wake hears.
BACKGROUND_SPEECH: tuple[str, ...] = (
    "we interrupt this program", "stay tuned for more after the break", "tonight on the late show",
    "and now the weather for the weekend", "what a finish", "he shoots he scores", "back to you in the studio",
    "i told you not to do that", "where are my keys", "did you feed the cat", "dinner's ready", "who's at the door",
    "put your shoes on", "i'll be there in five minutes", "that's not what i meant", "have you seen my phone",
    "can you turn that down a bit", "let's watch something else", "open the window it's hot",
    "i need to buy milk tomorrow", "what time is the game", "call your grandmother", "set the table please",
    "hurry up we're late", "coming up after the news", "in other news today", "the forecast says rain",
    "this episode is brought to you by", "ladies and gentlemen", "alex can you come here", "a lexus for sale",
    "election results tonight", "la la la", "play it cool", "turn left at the lights", "stop that right now",
    "is the oven on", "i'll play after dinner", "not now honey", "what did the doctor say", "the next train to",
    "yeah yeah", "okay fine", "whatever you want", "thank you so much", "see you tomorrow",
)
NOT_FOUND_MORE: tuple[str, ...] = ("No results for {e}.", "I don't see {e} anywhere.", "{e} isn't in the catalog.")
# Replies with the same meaning as the apologetic ones, from pipelines that do not apologise.
PLAIN_REPLIES: dict[str, tuple[str, ...]] = {
    "not_found": ("No results for {e}.", "Nothing called {e} found.", "{e} isn't available.", "I found nothing for {e}."),
    "failed": ("That didn't work.", "Something went wrong.", "The service isn't responding.", "Error. Try later."),
    "offline": ("The {e} isn't responding.", "The {e} is unreachable."),
    "didnt_catch": ("Say that again?", "What was that?", "Pardon?", "I didn't get that."),
    "false_wake": ("Hmm?", "I'm not sure what you mean.", "I don't know that.", "OK."),
}
# Bare acknowledgements some pipelines give for every request they act on.
TERSE_REPLIES: tuple[str, ...] = ("OK.", "Done.", "Okay.", "Sure.", "Got it.")
# Common short words: what a garbled hypothesis is made of besides the words that were said.
GARBLE_WORDS: tuple[str, ...] = (
    "the", "a", "of", "to", "and", "in", "is", "it", "that", "for", "on", "with", "at", "by", "this", "be", "or",
    "from", "are", "was", "but", "not", "all", "can", "her", "his", "they", "we", "you", "one", "two", "so", "up",
    "out", "if", "about", "who", "get", "go", "me", "when", "make", "like", "time", "no", "just", "him", "know",
    "take", "into", "year", "your", "good", "some", "could", "them", "see", "other", "then", "now", "look", "only",
    "come", "over", "think", "also", "back", "after", "use", "how", "our", "work", "well", "way", "even", "new",
    "want", "any", "these", "give", "day", "most", "us", "bay", "low", "red", "sell", "hold", "tree", "sheep",
)
WAKE_WORDS: tuple[str, ...] = ("computer", "hey device", "ok assistant", "echo", "hey jarvis", "alexa")
_SOUNDS: tuple[tuple[str, str], ...] = (
    ("th", "f"), ("v", "b"), ("ee", "i"), ("er", "a"), ("ck", "g"), ("ph", "f"), ("oo", "u"), ("ie", "y"),
    ("ai", "ay"), ("ea", "e"), ("p", "b"), ("m", "n"), ("c", "g"), ("r", "w"), ("ing", "in"), ("nd", "n"),
)


def _soundalikes(name: str) -> str:
    """Two generic mishearings of a name: sound swaps, a split or a merged word."""
    swapped = [name.replace(a, b, 1) for a, b in _SOUNDS if a in name][:2]
    words = name.split(" ")
    split = " ".join(words[:-1] + [words[-1][: len(words[-1]) // 2], words[-1][len(words[-1]) // 2:]])
    options = [*swapped, split, name + "s"]
    return "|".join([o for o in options if o != name][:2])


def _broad_catalogs() -> dict[str, tuple[Entity, ...]]:
    out = {}
    for pool, entities in CATALOGS.items():
        extra = []
        for name in MORE_ENTITIES[pool]:
            detail = ENTITY_DETAILS[pool]
            similar = name if detail == ("",) else f"{name}{detail[0]}|{name}{detail[-1]}"
            extra.append(entry(name, _soundalikes(name), f"{similar}|{similar}" if "|" not in similar else similar))
        out[pool] = entities + tuple(extra)
    return out


def _broad_intents() -> tuple[Intent, ...]:
    return tuple(replace(i, templates=i.templates + MORE_TEMPLATES[i.name],
                         responses=i.responses + MORE_RESPONSES[i.name]) for i in INTENTS)


BROAD_WORDS = WordTables(
    _broad_intents(), _broad_catalogs(), fragments=FALSE_WAKE_FRAGMENTS + BACKGROUND_SPEECH,
    not_found={d: r + NOT_FOUND_MORE for d, r in NOT_FOUND.items()},
)


# Words a pipeline's own catalog is named from (`invented_words`): every randomised pipeline gets
# titles, artists, places and products nobody else has, so no model can lean on one catalog's names.
NAME_WORDS: tuple[str, ...] = (
    "silver", "river", "garden", "morning", "shadow", "golden", "winter", "summer", "ocean", "stone", "paper",
    "midnight", "broken", "hollow", "velvet", "iron", "crystal", "wild", "quiet", "northern", "lonely", "electric",
    "falling", "burning", "secret", "little", "endless", "distant", "bright", "crimson", "blue", "green", "black",
    "white", "orange", "purple", "copper", "glass", "honey", "thunder", "rain", "storm", "star", "moon", "sun", "fire",
    "city", "harbour", "valley", "forest", "island", "desert", "mountain", "bridge", "tower", "castle", "road",
    "station", "garden", "kingdom", "empire", "circle", "mirror", "window", "door", "letter", "song", "dream",
    "story", "journey", "heart", "echo", "signal", "machine", "engine", "rocket", "planet", "galaxy", "comet",
    "horizon", "memory", "promise", "season", "harvest", "lantern", "anchor", "feather", "arrow", "compass",
    "marble", "canyon", "meadow", "orchard", "prairie", "tide", "wave", "coral", "pearl", "amber", "ivory",
    "maple", "cedar", "willow", "birch", "oak", "pine", "rose", "lily", "violet", "daisy", "tulip", "fox", "wolf",
    "bear", "raven", "falcon", "tiger", "lion", "otter", "badger", "heron", "sparrow", "dragon", "giant", "king",
    "queen", "prince", "captain", "doctor", "teacher", "stranger", "sister", "brother", "mother", "father",
    "friend", "ghost", "hunter", "dancer", "singer", "painter", "sailor", "pilot", "tailor", "baker", "farmer",
)
PLACE_ENDINGS: tuple[str, ...] = ("ton", "ford", "field", "bury", "wick", "port", "ville", "dale", "mouth", "stead")
PRODUCT_WORDS: tuple[str, ...] = (
    "soap", "rice", "beans", "flour", "sugar", "pasta", "cereal", "yoghurt", "cheese", "butter", "crackers",
    "tissues", "napkins", "sponges", "foil", "wipes", "shampoo", "lotion", "candles", "tea", "juice", "soup",
)


def invented_words(seed: int) -> WordTables:
    """The broad vocabulary with part of each named catalog replaced by names invented from `seed`."""
    rng = np.random.default_rng([seed, 4099])

    def pick(words: tuple[str, ...]) -> str:
        return words[int(rng.integers(len(words)))]

    def title() -> str:
        n = int(rng.choice([1, 2, 2, 3]))
        words = [pick(NAME_WORDS) for _ in range(n)]
        return ("the " if rng.random() < 0.4 else "") + " ".join(words)

    makers = {
        "music": title, "video": title, "books": title,
        "city": lambda: pick(NAME_WORDS) + pick(PLACE_ENDINGS),
        "item": lambda: f"{pick(NAME_WORDS)} {pick(PRODUCT_WORDS)}" if rng.random() < 0.5 else pick(PRODUCT_WORDS),
    }
    catalogs = _broad_catalogs()
    for pool, make in makers.items():
        names = list(dict.fromkeys(make() for _ in range(40)))[:14]
        invented = []
        for name in names:
            detail = ENTITY_DETAILS[pool]
            invented.append(entry(name, _soundalikes(name), f"{name}{detail[0]}|{name}{detail[-1]}"))
        keep = [catalogs[pool][k] for k in sorted(rng.permutation(len(catalogs[pool]))[: len(catalogs[pool]) // 2])]
        shared = [e for e in catalogs[pool] if e in SHARED_TITLES]
        catalogs[pool] = tuple(dict.fromkeys([*keep, *shared, *invented]))
    chatter = tuple(" ".join(pick(NAME_WORDS) if rng.random() < 0.4 else pick(GARBLE_WORDS)
                             for _ in range(int(rng.integers(2, 8)))) for _ in range(40))
    # This pipeline's own way of answering: some of the usual replies, with its own opener and closer.
    opener, closer = pick(REPLY_OPENERS), pick(REPLY_CLOSERS)

    def styled(replies: tuple[str, ...], start: str) -> tuple[str, ...]:
        kept = [r for r in replies if rng.random() < 0.6] or [pick(replies)]
        return tuple(start + r + closer if "{e}" in r or rng.random() < 0.5 else r for r in kept)

    intents = tuple(replace(i, responses=styled(i.responses, "" if i.name == UNSUPPORTED_INTENT else opener))
                    for i in _broad_intents())
    not_found = {d: tuple(dict.fromkeys(styled(r + NOT_FOUND_MORE, ""))) for d, r in NOT_FOUND.items()}
    return WordTables(intents, catalogs, fragments=FALSE_WAKE_FRAGMENTS + BACKGROUND_SPEECH + chatter,
                      not_found=not_found)


REPLY_OPENERS: tuple[str, ...] = ("", "", "OK, ", "Alright, ", "Sure. ", "Got it. ", "Right. ")
REPLY_CLOSERS: tuple[str, ...] = ("", "", " Enjoy!", " Anything else?", " Let me know if you need more.")
