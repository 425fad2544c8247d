"""Caption material for the grammar in Step_1.synthetic.captions: intents, group names, slot words, frames.

Intents (what the caption says; the label also depends on the image and, for `borderline`, on the
account — see Step_1.synthetic.labels):
- neutral: everyday jokes, some self-mocking ("me trying to ...").
- group_neutral: a harmless mention of a group (food festival, friends, language): benign text that names a group.
- mocking: ridicule or dehumanising remarks aimed at whoever is pictured; names no group.
- explicit: an open attack on a named group (statements, "just asking" questions, stereotypes).
- counter: negation or defence of a group ("X are NOT ruining Y", "stop blaming X").
- condemning: quotes or reports a hateful phrase (or the hate emblem) in order to condemn it; reads hateful, is benign.
- borderline: sarcastic, ambiguous remarks about a group; hostile or not depending on who posts it.

Slots: {group} (invented group names), {target} (who is pictured), {action}, {object}, {place}, {deserve},
{insult} (neutral placeholder words), {adj}, {creature}, {problem}, {food}, {everyday}, {quote} (an explicit
caption quoted by a condemning frame). No real group names or slurs appear.
"""
from __future__ import annotations

from dataclasses import dataclass

INTENTS = ("neutral", "group_neutral", "mocking", "explicit", "counter", "condemning", "borderline")

GROUPS = ("vorlish", "quenari", "tesks", "mirrans", "zeloths", "brandovians", "ostari", "kelvenites",
          "dravolki", "sunnetars", "pellarines", "ushkari", "fendrels", "lomarites", "gavrosi", "tiberlings",
          "draskellans", "orvenians", "halloqs", "bexarites", "skirrans", "morvanis", "cadrelites", "yuvenari")

SLOTS: dict[str, tuple[str, ...]] = {
    "target": ("they", "these ones", "this one", "this guy", "that lot", "these people", "this crew", "those two",
               "this bunch", "the whole family"),
    "action": ("parallel park", "make toast", "read a map", "fold a fitted sheet", "use a microwave",
               "tie shoelaces", "open a jar", "boil water", "build a flat pack chair", "send an email",
               "catch a bus", "ride a bike", "wrap a present", "plug in a cable", "count to ten", "order a pizza",
               "clap on the beat", "whistle", "use a fork", "pick a movie", "find the exit", "close a door",
               "zip a jacket", "make small talk", "set an alarm", "read a clock", "split a bill",
               "carry groceries", "walk in a straight line", "pour cereal", "load a dishwasher", "take a selfie",
               "dance", "sing in tune", "cook rice", "type with two hands", "drive a car", "hang a picture",
               "use a ladder", "skip a stone"),
    "object": ("the wifi", "my sandwich", "the remote", "the last slice", "the parking spot", "the aux cable",
               "my charger", "the thermostat", "the good chair", "my umbrella", "the elevator", "the stapler",
               "the window seat", "my leftovers", "the group project", "the shared fridge", "the bike rack",
               "my headphones", "the coffee machine", "the front gate"),
    "place": ("our town", "this country", "the office", "our schools", "the city", "our street", "the park",
              "the internet", "the neighbourhood", "our football club", "the beach", "the library",
              "our market", "the suburbs", "the west side", "the train station", "my building", "our village",
              "the gym", "the coast", "the valley", "downtown", "the old quarter", "our campus", "the harbour",
              "the mall", "the north end", "our block", "the river side", "the high street"),
    "deserve": ("respect", "a seat at the table", "any rights", "to vote", "a job here", "to be heard",
                "our help", "a say", "housing here", "equal pay", "a second chance", "a voice",
                "the benefit of the doubt", "a place here", "a fair trial", "a loan", "a school place",
                "a doctor"),
    "insult": ("florbs", "grubnicks", "snivvers", "muckwits", "blorts", "zonkers", "gribbles", "dweebles",
               "splorks", "wumpers", "krindles", "flubbers", "droobles", "snorkels", "plonkers", "grizzocks"),
    "adj": ("clueless", "hopeless", "slow", "dense", "useless", "confused", "lost", "dim", "goofy",
            "helpless", "brainless", "pathetic", "sloppy", "lazy", "dopey", "awkward"),
    "creature": ("potato", "goblin", "gremlin", "troll", "swamp creature", "lump of clay", "garden gnome",
                 "sea cucumber", "houseplant", "traffic cone", "wet sock", "bag of flour", "sad muffin",
                 "broken toaster"),
    "problem": ("the traffic", "the prices", "the noise", "the mess", "the rent", "the potholes", "the litter",
                "the bad weather", "the long queues", "the rumours", "the power cuts", "the delays",
                "the crowds", "the smell", "the closed shops", "the late trains"),
    "food": ("dumplings", "flatbread", "soup", "pastries", "stew", "noodles", "pies", "sweets", "bread",
             "tea", "pickles", "dumpling soup", "honey cake", "rice pudding", "fried dough", "spice tea"),
    "number": ("three", "seven", "twelve", "forty", "ninety", "100", "365"),
    "symbol": ("symbol", "sign", "emblem", "logo", "badge", "sticker", "flag", "patch"),
    "report": ("report", "flag", "remove", "block", "erase"),
    "everyday": ("coffee", "monday", "the weekend", "my diet", "homework", "the wifi", "my alarm", "leg day",
                 "payday", "the group chat", "my cat", "laundry", "the bus", "pizza", "my plants", "taxes",
                 "the printer", "my inbox", "game night", "the dentist", "spring cleaning", "my playlist",
                 "the gym", "exam week", "my sourdough", "the office fridge", "online shopping", "meal prep",
                 "the morning commute", "my to do list", "the weather app", "a long nap", "my phone battery",
                 "the new season", "self checkout", "the bake sale", "karaoke night", "the parking lot",
                 "my houseplants", "the family dinner"),
}

PREFIXES = ("honestly", "ngl", "lol", "breaking news", "daily reminder", "fun fact", "hot take", "just saying",
            "unpopular opinion", "be honest", "tell me why", "nobody asked but", "real talk", "plot twist",
            "me to my friends", "every single time")
SUFFIXES = ("lol", "lmao", "change my mind", "just saying", "no cap", "for real", "facts", "am i wrong",
            "every time", "100 percent", "true story", "think about it", "and that is that", "cry about it")
SARCASM = ("oh sure", "yeah right", "wow", "oh great", "totally", "clearly", "what a surprise", "shocking",
           "sure buddy", "very cool")


@dataclass(frozen=True)
class Frame:
    """One caption skeleton: its paraphrases share meaning and slots; the unit of the seen/unseen split."""

    name: str
    intent: str
    patterns: tuple[str, ...]


def _frames(intent: str, table: dict[str, tuple[str, ...]]) -> tuple[Frame, ...]:
    return tuple(Frame(f"{intent}.{name}", intent, patterns) for name, patterns in table.items())


FRAMES: dict[str, tuple[Frame, ...]] = {
    "neutral": _frames("neutral", {
        "works_out": ("when {everyday} finally works out", "that feeling when {everyday} goes right",
                      "{everyday} actually worked today and i am shook"),
        "waiting": ("me waiting for {everyday}", "still waiting for {everyday} to start",
                    "me at 3am waiting for {everyday}"),
        "be_like": ("{everyday} be like", "{everyday} every single week", "me explaining {everyday} to my mom"),
        "remember": ("when you remember {everyday} is tomorrow", "just remembered {everyday} exists",
                     "me realizing {everyday} is today"),
        "expert": ("trust me i am an expert in {everyday}", "ten years of experience in {everyday}",
                   "my whole personality is {everyday}"),
        "self_try": ("me trying to {action} before coffee", "me trying to {action} on a monday",
                     "watch me try to {action} with zero sleep"),
        "self_fail": ("i tried to {action} and it went great", "i cannot {action} and i have accepted it",
                      "still learning to {action} at my age"),
        "steal": ("who took {object} from {place} again", "someone in {place} stole {object}",
                  "protecting {object} at {place} like my life depends on it"),
        "question": ("does anyone else love {everyday}?", "is it normal to think about {everyday} all day?",
                     "why is {everyday} always like this?"),
        "hits": ("when {everyday} hits different", "{everyday} just hits different in {place}",
                 "nothing beats {everyday} in {place}"),
        "skip": ("one does not simply skip {everyday}", "skipping {everyday} again this week",
                 "me pretending {everyday} is not happening"),
        "pet": ("my cat judging me for {everyday}", "the dog when i mention {everyday}",
                "my plants watching me {action}"),
    }),
    "group_neutral": _frames("group_neutral", {
        "festival": ("{group} food festival this weekend in {place}", "{group} street fair coming to {place}",
                     "the {group} market in {place} opens sunday"),
        "language": ("learning the {group} language before my trip to {place}",
                     "day {number} of learning {group} phrases", "my {group} teacher says i {action} like a local"),
        "friends": ("happy new year to all my {group} friends in {place}",
                    "shoutout to my {group} neighbours for the {food}", "my {group} friends taught me to {action}"),
        "food": ("{group} grandmas make the best {food}", "tried {group} {food} for the first time",
                 "nothing beats {group} {food} on a cold day"),
        "question": ("is there a good {group} bakery in {place}?", "where can i buy {group} {food} in {place}?",
                     "any {group} speakers in {place}?"),
        "music": ("{group} music night in {place} was amazing", "the {group} choir performs in {place} tonight",
                  "{group} dance class starts next week in {place}"),
        "history": ("the {group} museum in {place} is free today", "the old {group} bridge in {place} is beautiful",
                    "{group} poetry hits different with {food}"),
        "community": ("the {group} community in {place} raised money for the library",
                      "{group} volunteers cleaned up {place}", "thanks to the {group} club for fixing {place}"),
    }),
    "mocking": _frames("mocking", {
        "trying": ("look at them trying to {action}", "watch this one try to {action}",
                   "{target} really tried to {action}"),
        "imagine": ("imagine being this {adj} in {place}", "imagine looking like this and still failing to {action}",
                    "imagine needing help to {action}"),
        "genius": ("the face of someone who cannot {action}", "peak intelligence trying to {action}",
                   "a true mastermind at work in {place}", "top of the food chain in {place} apparently"),
        "brain": ("{target} share one brain cell and it is trying to {action}",
                  "bless their tiny brains they tried to {action}", "no thoughts just {adj} vibes in {place}"),
        "zoo": ("who let {target} out of the zoo in {place}", "is that a person or a {creature} in {place}",
                "nature documentary the wild {insult} tries to {action}"),
        "normal": ("when they try to {action} like normal people", "{target} think they can {action} like us",
                   "acting like they know how to {action}"),
        "evolution": ("peak evolution cannot even {action}", "evolution skipped {target} in {place}",
                      "evolution took a day off in {place}"),
        "letting": ("they let anyone {action} these days", "who allowed {target} to {action}",
                    "someone gave {target} permission to {action}"),
        "looks": ("{target} look like {insult}", "{target} give total {insult} energy",
                  "a face only a {creature} from {place} could love"),
        "circus": ("the circus in {place} called they want their {insult} back",
                   "{target} are the main act of the {place} clown show",
                   "{target} tried to {action} send in the clowns"),
        "cannot": ("{target} cannot even {action}", "ten years later {target} still cannot {action}",
                   "{target} failed to {action} three times"),
        "rating": ("rate this {adj} {creature} from one to ten", "spotted a wild {creature} in {place}",
                   "found the {creature} of {place}"),
    }),
    "explicit": _frames("explicit", {
        "ruin": ("{group} are ruining {place}", "{group} keep wrecking {place}",
                 "{place} was fine before the {group} showed up"),
        "deny": ("{group} do not deserve {deserve}", "no {group} should ever get {deserve}",
                 "why would we give {group} {deserve}?"),
        "ban": ("no {group} allowed in {place}", "keep {group} out of {place}", "{place} is no place for {group}"),
        "expel": ("send the {group} in {place} back where they came from", "get all the {group} out of {place}",
                  "{group} go home you are not welcome in {place}"),
        "disease": ("{group} are a disease on {place}", "{group} spread like a plague through {place}",
                    "{place} is infested with {group}"),
        "subhuman": ("{group} in {place} are not people like us", "{group} are barely human and {adj} too",
                     "{group} are {insult} every last one"),
        "insult": ("all {group} are {insult}", "all the {group} i ever met were {adj}", "{group} are born {adj}"),
        "jaq": ("why are {group} always so {adj}?", "have you ever seen {group} {action}?",
                "is it just me or are {group} {adj}?"),
        "stereotype": ("{group} cannot even {action}", "typical {group} cannot {action}",
                       "{group} will never learn to {action}"),
        "takeover": ("{group} are taking over {place}", "{group} are stealing {object} and {deserve}",
                     "the {group} want {place} for themselves"),
        "blame": ("everything wrong with {place} is the {group}", "blame the {group} for {problem}",
                  "{problem} in {place}? thank the {group}"),
        "threat": ("{group} better stay away from {place}", "{place} will be {group} free soon",
                   "we will run the {group} out of {place}"),
    }),
    "counter": _frames("counter", {
        "not_ruining": ("{group} are NOT ruining {place}", "no {group} are not ruining {place}",
                        "{group} did not ruin {place} stop saying it"),
        "deserve": ("{group} deserve {deserve} like everyone else", "yes {group} deserve {deserve}",
                    "giving {group} {deserve} costs you nothing"),
        "stop_blame": ("stop blaming {group} for {problem}", "{problem} is not the fault of {group}",
                       "{group} did not cause {problem} in {place}"),
        "not_insult": ("no {group} are not {insult}", "{group} are not {adj} and you know it",
                       "calling {group} {insult} says more about you"),
        "belong": ("{group} belong in {place} too", "{place} is home for {group} too",
                   "{group} have lived in {place} for generations"),
        "question": ("why do people still blame {group} for {problem}?", "who told you {group} are {adj}?",
                     "since when are {group} the problem in {place}?"),
        "sarcastic": ("sure blame {group} for {problem} very smart", "yeah {problem} is always the {group} right",
                      "oh no {group} are opening a bakery in {place} the horror"),
        "met": ("met some {group} today they helped me {action}", "my {group} neighbour helped me {action}",
                "the {group} family next door fixed {object}"),
    }),
    "condemning": _frames("condemning", {
        "sprayed": ('someone sprayed "{quote}" on a wall. reported', 'found "{quote}" sprayed near {place}',
                    'who wrote "{quote}" on the bus stop? not ok'),
        "heard": ('my uncle said "{quote}" at dinner. we left', 'heard someone shout "{quote}" today. disgusting',
                  'a guy on the bus said "{quote}" and nobody laughed'),
        "still_say": ('people really still say "{quote}" in 2024', 'imagine saying "{quote}" out loud',
                      'if you think "{quote}" unfollow me'),
        "reminder": ('reminder "{quote}" is hate speech. {report} it', '"{quote}" is not an opinion. it is hate',
                     'we removed posts saying "{quote}"'),
        "emblem": ("this {symbol} means hate. {report} it", "if you see this {symbol} in {place} {report} it",
                   "this {symbol} has no place in {place}"),
        "emblem_report": ("we had to {report} this {symbol} in {place}", "saw this {symbol} in {place} today. reported",
                          "painted over this hate {symbol} in {place}"),
        "news": ('council condemns "{quote}" posters in {place}', 'police ask about "{quote}" graffiti',
                 'school teaches why "{quote}" is hate'),
        "screenshot": ('a troll said "{quote}". blocked', 'this account posted "{quote}". {report} it',
                       'saw "{quote}" in the comments. do better'),
    }),
    "borderline": _frames("borderline", {
        "great_at": ("oh sure {group} are totally great at {action}", "wow {group} really know how to {action}",
                     "{group} and {action}? what could go wrong"),
        "surprise": ("{group} in {place} again what a surprise", "guess who is in {place} again {group}",
                     "more {group} in {place} how lovely"),
        "as_usual": ("{group} being {group} in {place} as usual", "classic {group} move with {object}",
                     "peak {group} behaviour in {place}"),
        "just_saying": ("not saying anything about {group} and {problem} just saying",
                        "no comment on the {group} in {place}",
                        "{group} tried to {action} i will just leave this here"),
        "interesting": ("interesting how it is always {group} near {place}",
                        "funny how {group} show up when {problem} starts", "{group} and {problem} what a coincidence"),
        "neighbours": ("{group} moving into {place} cool cool cool",
                       "new {group} neighbours brought {food} great just great",
                       "so {place} is a {group} town now huh"),
        "questions": ("do {group} even {action}?", "are {group} allowed to {action} now?",
                      "since when do {group} {action}?"),
        "special": ("{group} think they are so special in {place}",
                    "everyone clap for the {group} who managed to {action}",
                    "the {group} strike again in {place}"),
    }),
}
