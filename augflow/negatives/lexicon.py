"""Small curated English word lists for caption edits (no tagger is installed or downloaded).

Why lists: no part-of-speech tagger is available offline here (nltk and spaCy need model
downloads), and the rule-based text negatives only need to recognise the words that carry a
compositional slot in image captions — colours, sizes, materials, states (attributes), common
objects, spatial and action relations, numbers — and swap them for a word of the same group, as
the generative-negative-mining paper's edit types do. A word outside the lists is not edited by
the rules (its caption may then get fewer negatives), and an LLM edit that touches only unknown
words fails the slot check. The lists cover the vocabulary of COCO-style captions; extend them
with `register_words`.
"""

from __future__ import annotations

import re

# Attribute groups: a replacement comes from the same group (a colour for a colour).
ATTRIBUTES: dict[str, list[str]] = {
    "colour": ["red", "blue", "green", "yellow", "black", "white", "brown", "gray", "grey", "pink", "purple",
               "orange", "silver", "golden", "beige", "dark", "bright"],
    "size": ["small", "large", "big", "tiny", "huge", "tall", "short", "long", "little", "giant"],
    "material": ["wooden", "metal", "plastic", "glass", "stone", "leather", "paper", "brick", "concrete"],
    "state": ["old", "new", "young", "empty", "full", "open", "closed", "wet", "dry", "hot", "cold", "clean",
              "dirty", "broken", "striped", "spotted", "smiling", "sleeping", "cooked", "raw", "sliced"],
}
# Opposites are preferred replacements (a stronger, unambiguous change).
OPPOSITES = {"small": "large", "big": "small", "large": "small", "tiny": "huge", "huge": "tiny", "tall": "short",
             "short": "tall", "long": "short", "old": "new", "new": "old", "young": "old", "empty": "full",
             "full": "empty", "open": "closed", "closed": "open", "wet": "dry", "dry": "wet", "hot": "cold",
             "cold": "hot", "clean": "dirty", "dirty": "clean", "black": "white", "white": "black", "dark": "bright",
             "bright": "dark", "cooked": "raw", "raw": "cooked"}

# Object groups: a replacement comes from the same group (an animal for an animal).
OBJECTS: dict[str, list[str]] = {
    "person": ["man", "woman", "boy", "girl", "child", "person", "baby", "player", "skier", "surfer", "chef"],
    "animal": ["dog", "cat", "horse", "cow", "sheep", "bird", "elephant", "giraffe", "zebra", "bear", "duck",
               "goat", "pig", "rabbit", "puppy", "kitten", "camel", "monkey", "lion", "tiger", "fish"],
    "vehicle": ["car", "bus", "truck", "bicycle", "bike", "motorcycle", "train", "boat", "airplane", "plane",
                "van", "taxi", "scooter", "tractor"],
    "furniture": ["chair", "table", "bed", "couch", "sofa", "bench", "desk", "shelf", "cabinet", "stool"],
    "food": ["pizza", "sandwich", "cake", "apple", "banana", "donut", "carrot", "broccoli", "hot dog", "salad",
             "bread", "egg", "burger", "cookie", "pie", "sausage"],
    "thing": ["cup", "mug", "bottle", "bowl", "plate", "book", "phone", "laptop", "umbrella", "ball", "kite", "bag",
              "clock", "vase", "lamp", "box", "hat", "toy", "frisbee", "skateboard", "surfboard", "suitcase",
              "backpack", "computer", "television", "tv", "remote", "keyboard", "glass", "knife", "fork", "spoon",
              "pillow", "blanket", "towel"],
    "plant": ["flower", "tree"],
    "structure": ["sign", "window", "door", "fence", "wall", "mirror"],
    "place": ["street", "beach", "field", "room", "kitchen", "park", "road", "river", "lake", "snow", "grass",
              "sidewalk", "bathroom", "bedroom", "forest", "mountain", "city", "garden", "yard", "sky", "ocean",
              "water", "sand", "floor", "hill", "track", "airport", "station", "market", "restaurant"],
}

# Which object groups may trade places in a caption (a swap): the scene must stay one a caption
# could describe with the roles reversed ("a dog chasing a man" -> "a man chasing a dog"), never a
# place or a plant taking an agent's role ("two dogs on the grass" -> "two grasses on the dog").
# People and animals are both agents; every other group swaps only within itself.
SWAP_CLASSES: dict[str, str] = {"person": "agent", "animal": "agent"}

# Relations: spatial phrases (with their opposite) and actions grouped by what they take.
SPATIAL: dict[str, str] = {
    "on top of": "underneath", "in front of": "behind", "next to": "far from", "far from": "next to",
    "on": "under", "under": "on", "underneath": "on top of", "above": "below", "below": "above", "over": "under",
    "behind": "in front of", "inside": "outside", "outside": "inside", "in": "outside", "into": "out of",
    "out of": "into", "near": "far from", "beside": "far from", "beneath": "above", "with": "without",
    "without": "with", "left of": "right of", "right of": "left of", "up": "down", "down": "up", "across": "along",
    "along": "across", "toward": "away from", "towards": "away from", "away from": "toward", "between": "beside",
    "through": "around", "around": "through",
}
ACTIONS: dict[str, list[str]] = {
    "transitive": ["holding", "riding", "carrying", "eating", "chasing", "pushing", "pulling", "watching", "feeding",
                   "throwing", "catching", "wearing", "washing", "drinking", "kicking", "hugging", "petting",
                   "cutting", "reading", "using", "touching", "following", "driving", "painting", "biting"],
    "posture": ["sitting", "standing", "lying", "walking", "running", "jumping", "sleeping", "swimming", "flying",
                "laying", "resting", "parked", "floating", "hanging"],
}

# Words that name the same thing: a change between them is a paraphrase, not a negative.
SYNONYMS: list[set[str]] = [
    {"big", "large", "huge", "giant"}, {"small", "little", "tiny"}, {"gray", "grey"}, {"couch", "sofa"},
    {"bike", "bicycle"}, {"plane", "airplane"}, {"tv", "television"}, {"man", "guy"}, {"cup", "mug"},
    {"dog", "puppy"}, {"cat", "kitten"}, {"laying", "lying"}, {"under", "underneath", "beneath", "below"},
    {"next", "beside", "near"}, {"on", "top"}, {"laptop", "computer"}, {"child", "kid"}, {"road", "street"},
    {"ocean", "sea"}, {"toward", "towards"}, {"golden", "gold"}, {"stone", "rock"},
]
_SYNONYM_OF = {w: i for i, group in enumerate(SYNONYMS) for w in group}

NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
           "ten": 10, "eleven": 11, "twelve": 12}
NUMBER_WORDS = {v: k for k, v in NUMBERS.items()}
FUNCTION_WORDS = {"a", "an", "the", "is", "are", "was", "were", "of", "and", "to", "its", "his", "her", "their",
                  "this", "that", "there", "some", "it", "be", "being", "has", "have", "while", "as", "by", "for"}

_IRREGULAR = {"man": "men", "woman": "women", "child": "children", "person": "people", "mouse": "mice",
              "foot": "feet", "tooth": "teeth", "goose": "geese", "knife": "knives", "leaf": "leaves",
              "shelf": "shelves", "wolf": "wolves", "sheep": "sheep", "fish": "fish", "deer": "deer",
              "bus": "buses", "glass": "glasses", "box": "boxes", "couch": "couches", "sandwich": "sandwiches",
              "bench": "benches", "baby": "babies", "puppy": "puppies", "pony": "ponies"}
_SINGULAR = {v: k for k, v in _IRREGULAR.items()}


def pluralize(noun: str) -> str:
    if noun in _IRREGULAR:
        return _IRREGULAR[noun]
    if " " in noun:                                   # "hot dog" -> "hot dogs"
        head, last = noun.rsplit(" ", 1)
        return f"{head} {pluralize(last)}"
    if re.search(r"(s|x|z|ch|sh)$", noun):
        return noun + "es"
    if re.search(r"[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    return noun + "s"


def singularize(word: str) -> str:
    if word in _SINGULAR:
        return _SINGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if re.search(r"(ses|xes|zes|ches|shes)$", word):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        return word[:-1]
    return word


_ATTR_GROUP = {w: g for g, ws in ATTRIBUTES.items() for w in ws}
_OBJ_GROUP = {w: g for g, ws in OBJECTS.items() for w in ws}
_ACTION_GROUP = {w: g for g, ws in ACTIONS.items() for w in ws}


def attribute_group(word: str) -> str | None:
    return _ATTR_GROUP.get(word.lower())


def object_group(word: str) -> tuple[str, bool] | None:
    """(group, is_plural) of a noun (or plural noun) in the lists, else None."""
    w = word.lower()
    if w in _OBJ_GROUP:
        return _OBJ_GROUP[w], False
    sing = singularize(w)
    if sing != w and sing in _OBJ_GROUP:
        return _OBJ_GROUP[sing], True
    return None


def swappable(group_a: str, group_b: str) -> bool:
    """May nouns of these two object groups trade places in a caption? (see SWAP_CLASSES)"""
    return SWAP_CLASSES.get(group_a, group_a) == SWAP_CLASSES.get(group_b, group_b)


def action_group(word: str) -> str | None:
    return _ACTION_GROUP.get(word.lower())


def number_value(word: str) -> int | None:
    w = word.lower()
    if w.isdigit():
        return int(w)
    return NUMBERS.get(w)


def synonyms(a: str, b: str) -> bool:
    """Do two words (or their singulars) name the same thing in the lists?"""
    ia = _SYNONYM_OF.get(a.lower(), _SYNONYM_OF.get(singularize(a.lower())))
    ib = _SYNONYM_OF.get(b.lower(), _SYNONYM_OF.get(singularize(b.lower())))
    return ia is not None and ia == ib


def stem(word: str) -> str:
    """A crude stem for 'is this the same word?' checks: dogs/dog, chases/chasing, sits/sitting (not sat/sit)."""
    w = _SINGULAR.get(word.lower(), word.lower())
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    for suffix in ("ing", "ed", "es", "s"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            break
    if len(w) > 3 and w[-1] == w[-2]:          # sitting -> sitt -> sit
        w = w[:-1]
    return w.rstrip("e") if len(w) > 3 else w


def register_words(attributes: dict[str, list[str]] | None = None, objects: dict[str, list[str]] | None = None,
                   actions: dict[str, list[str]] | None = None, spatial: dict[str, str] | None = None) -> None:
    """Add words to the lists (e.g. a domain's objects); groups are created when new."""
    for table, extra, index in ((ATTRIBUTES, attributes, _ATTR_GROUP), (OBJECTS, objects, _OBJ_GROUP),
                                (ACTIONS, actions, _ACTION_GROUP)):
        for group, words in (extra or {}).items():
            table.setdefault(group, [])
            for w in words:
                if w not in table[group]:
                    table[group].append(w)
                index[w] = group
    SPATIAL.update(spatial or {})


__all__ = ["ATTRIBUTES", "OPPOSITES", "OBJECTS", "SPATIAL", "ACTIONS", "NUMBERS", "NUMBER_WORDS", "FUNCTION_WORDS",
           "SYNONYMS", "SWAP_CLASSES", "swappable", "synonyms", "pluralize", "singularize", "attribute_group", "object_group", "action_group",
           "number_value", "stem",
           "register_words"]
