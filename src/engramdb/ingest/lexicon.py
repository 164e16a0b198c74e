"""Word lists the rule-based extractor reads: occupations, kin, pets, diets, chatter verbs.

Kept apart from the rules so that they can grow without touching the logic. All lower case,
matched against spaCy lemmas.
"""

from __future__ import annotations

__all__ = [
    "CHANGE_PARTICLES",
    "CHATTER_PHRASES",
    "CHATTER_VERBS",
    "DIETS",
    "DISLIKE_VERBS",
    "END_VERBS",
    "EVENT_VERBS",
    "FAMILY",
    "FOND_ADJECTIVES",
    "GONE_VERBS",
    "KEPT_ADVERBS",
    "KEY_FILLERS",
    "LIKE_VERBS",
    "LOSE_VERBS",
    "OCCUPATIONS",
    "OCCUPATION_SUFFIXES",
    "OPINION_VERBS",
    "PARTNERS",
    "PARTNER_VERBS",
    "PETS",
    "PLAN_VERBS",
    "POSSESSIONS",
    "RELATIONSHIP_STATUSES",
    "RESCHEDULE_VERBS",
    "STATES",
    "STATE_PREPOSITIONS",
    "TOPIC_PREPOSITIONS",
    "TURN_VERBS",
    "VAGUE_OBJECTS",
    "VAGUE_SUBJECTS",
    "WEARY_ADJECTIVES",
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

LIKE_VERBS = _words("like love enjoy adore prefer fancy appreciate admire cherish value")
DISLIKE_VERBS = _words("hate dislike detest loathe despise avoid")
OPINION_VERBS = LIKE_VERBS | DISLIKE_VERBS
#: Verbs of a change of mind, followed by an opinion verb ("I've come to love X").
TURN_VERBS = _words("come start begin grow learn")
#: Adjectives that state a liking for their complement ("excited about X", "keen to try X").
FOND_ADJECTIVES = _words(
    "interested passionate fond crazy keen enthusiastic excited eager thrilled"
)
#: Adjectives that state a dislike of their complement ("tired of X", "bored with X").
WEARY_ADJECTIVES = _words("tired sick bored weary fed")
#: Adjectives that state how the speaker is, even without a complement ("I'm optimistic").
STATES = _words(
    """grateful thankful excited anxious nervous worried stressed overwhelmed optimistic
    hopeful proud happy unhappy sad lonely exhausted confident determined committed motivated
    inspired healthy sick ill pregnant retired unemployed relieved satisfied frustrated
    allergic injured"""
)
#: Prepositions that attach what a state is about ("grateful for", "committed to").
STATE_PREPOSITIONS = ("in", "into", "of", "about", "for", "with", "to", "on", "by", "at")
#: Words left out of an opinion's key ("more romance novels" is about romance novels).
KEY_FILLERS = _words(
    """a an the my your his her its our their some more these those this that such other all
    many few several any new"""
)
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
#: Words before the subject that say when or how often, kept in a fact ("Recently, I ...").
KEPT_ADVERBS = _words(
    """recently lately now currently still already always never often usually sometimes
    finally once again soon today yesterday tomorrow"""
)
#: Subjects that name nothing on their own ("it helps me", "that made me think").
VAGUE_SUBJECTS = _words(
    """it this that these those they them there here what which who whoever everything
    something anything nothing everyone someone anyone one we you he she"""
)
#: Verb + particle or object pairs that are conversation ("keep it in mind", "check it out").
CHATTER_PHRASES = frozenset([("keep", "in"), ("check", "out"), ("let", "know"), ("figure", "out")])
#: Nouns too abstract to hold an opinion about ("excited about the future").
VAGUE_TOPICS = _words(
    """future potential possibility opportunity chance journey progress prospect outcome
    result impact difference change way idea thought see"""
)
#: Activities whose topic comes after a preposition ("listening to jazz" is about jazz).
TOPIC_PREPOSITIONS = {
    "listen": "to",
    "go": "to",
    "travel": "to",
    "read": "about",
    "learn": "about",
    "talk": "about",
    "hear": "about",
}
#: Verbs by which the speaker ends something ("I sold the car", "we gave Kiwi away", "I switched
#: from X to Y", "I dropped Spanish"): their object is no longer the speaker's.
END_VERBS = _words(
    """sell quit leave drop cancel lose stop end divorce retire trade replace switch abandon
    ditch dump give break move"""
)
#: Particles without which these verbs end nothing ("give away", "break up", "move out").
CHANGE_PARTICLES = {"give": ("away", "up"), "break": ("up",), "move": ("out",), "trade": ("in",)}
#: Verbs by which something of the speaker's is gone ("Biscuit passed away", "the bike got
#: stolen", "the laptop died").
GONE_VERBS = _words("die pass steal break close sell lose")
#: Verbs that move or call off something planned ("rescheduled me to April 2", "pushed the
#: offsite back", "the workshop got called off").
RESCHEDULE_VERBS = _words("reschedule postpone move push delay bring cancel call shift")
#: Verbs that name a partner ("I'm dating Priya", "I married Sam").
PARTNER_VERBS = _words("date marry wed")
