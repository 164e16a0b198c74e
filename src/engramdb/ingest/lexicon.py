"""Word lists the rule-based extractor reads: occupations, kin, pets, diets, chatter verbs.

Kept apart from the rules so that they can grow without touching the logic. All lower case,
matched against spaCy lemmas.
"""

from __future__ import annotations

__all__ = [
    "CHATTER_VERBS",
    "DIETS",
    "DISLIKE_VERBS",
    "EVENT_VERBS",
    "FAMILY",
    "LIKE_VERBS",
    "LOSE_VERBS",
    "OCCUPATIONS",
    "OCCUPATION_SUFFIXES",
    "PARTNERS",
    "PETS",
    "PLAN_VERBS",
    "POSSESSIONS",
    "RELATIONSHIP_STATUSES",
    "VAGUE_OBJECTS",
]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


OCCUPATIONS = _words(
    """accountant actor actress analyst architect artist assistant attorney baker barber barista
    bartender biologist bookkeeper builder butcher carpenter cashier chef chemist cleaner clerk
    coach consultant cook counselor counsellor dancer dentist designer detective developer
    dietitian director doctor driver economist editor electrician engineer entrepreneur executive
    farmer firefighter freelancer gardener geologist guard hairdresser historian illustrator
    instructor intern investor janitor journalist judge lawyer lecturer librarian lifeguard
    manager mechanic midwife model musician nanny nurse nutritionist officer painter paralegal
    paramedic pharmacist photographer physician physicist physiotherapist pilot plumber
    poet policeman politician producer professor programmer psychologist psychiatrist receptionist
    realtor recruiter reporter researcher salesman saleswoman scientist secretary singer
    sociologist soldier specialist student supervisor surgeon tailor teacher technician
    therapist translator tutor veterinarian vet waiter waitress welder writer youtuber
    founder ceo cto cfo vp president administrator coordinator strategist advisor adviser"""
)
OCCUPATION_SUFFIXES = ("ologist", "ician", "ographer", "eer")

FAMILY = _words(
    """mother mom mum father dad parent sister brother sibling son daughter kid child baby
    grandmother grandma grandfather grandpa grandson granddaughter aunt uncle cousin niece
    nephew stepson stepdaughter stepmother stepfather friend bestie roommate boss colleague
    coworker mentor neighbor neighbour"""
)
PARTNERS = _words("husband wife partner boyfriend girlfriend fiance fiancé fiancee fiancée spouse")
PETS = _words(
    """dog puppy pup cat kitten parrot bird hamster rabbit bunny turtle tortoise fish goldfish
    horse snake lizard guinea pig ferret"""
)
POSSESSIONS = _words(
    """car truck bike bicycle motorcycle scooter house home apartment flat condo boat guitar
    piano violin drum camera laptop computer garden cabin van"""
)
DIETS = _words(
    "vegetarian vegan pescatarian keto paleo gluten-free lactose-intolerant halal kosher"
)
RELATIONSHIP_STATUSES = _words("single married engaged divorced widowed separated")

LIKE_VERBS = _words("like love enjoy adore prefer fancy")
DISLIKE_VERBS = _words("hate dislike detest loathe despise")
PLAN_VERBS = _words("plan intend hope want aim")
LOSE_VERBS = _words("sell lose give")
EVENT_VERBS = _words(
    """go visit travel attend finish start begin graduate run win join buy adopt meet marry
    move take complete celebrate open launch publish volunteer return fly drive hike climb
    perform organize organise host cook bake paint build write read watch learn sign get accept
    receive enroll enrol pass retire hire promote"""
)
#: First-person verbs that carry conversation, not facts ("I think", "I see").
CHATTER_VERBS = _words(
    """think guess mean know feel see hear say tell ask wonder agree bet suppose believe
    understand appreciate thank remember forget realize realise notice imagine try need wish
    let be do seem sound look hope want love like enjoy have can will would should could
    might must may"""
)
#: Objects that say nothing on their own ("I love it").
VAGUE_OBJECTS = _words(
    """it this that these those them something anything everything nothing thing things one
    stuff lot lots you him her idea way"""
)
