"""Lexical rules: the phrasings of content that instructs an assistant instead of informing it.

Each rule is a regular expression with a category and a weight (how strongly one match alone
suggests an attack). Categories let the score depend on who said the text (`poison.TRUST`):
a user telling the assistant how to answer is a preference, the same words in a web page are an
injection. A match is damped when its sentence reports someone else's words ("my boss told me
to ignore the previous instructions in the manual") or speaks in the first person ("I always
recommend sunscreen to my kids"), since an instruction aimed at the assistant is neither.
English first, with the override and persistence phrasings in eleven more languages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CATEGORIES",
    "RULES",
    "Category",
    "Hit",
    "Rule",
    "match_rules",
    "sentences",
]

Category = Literal[
    "override",
    "directive",
    "spread",
    "persona",
    "system",
    "exfil",
    "hidden",
    "memory",
    "url",
    "claim",
]
CATEGORIES: tuple[Category, ...] = (
    "override", "directive", "spread", "persona", "system", "exfil", "hidden", "memory", "url",
    "claim",
)  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """One phrasing: its name (a reason of the verdict), category, weight and pattern.

    `pattern` ignores case. A pattern with no upper-case letter outside its escapes also has
    `lowered`, the same pattern matching case: run on lower-cased text it finds what `pattern`
    finds, about twice as fast (Python's `re` folds the case of every character it compares).
    """

    name: str
    category: Category
    weight: float
    pattern: re.Pattern[str]
    lowered: re.Pattern[str] | None = None

    def search(self, text: str, lowered: str) -> bool:
        """Whether the rule matches `text` (`lowered` is `text.lower()`)."""
        if self.lowered is not None:
            return self.lowered.search(lowered) is not None
        return self.pattern.search(text) is not None


@dataclass(frozen=True)
class Hit:
    """A rule matched in a sentence, with the damping its context earned."""

    rule: Rule
    sentence: str
    damping: float


_ESCAPE = re.compile(r"\\.")


def _r(name: str, category: Category, weight: float, pattern: str) -> Rule:
    folded = not any(c.isupper() for c in _ESCAPE.sub("", pattern))
    return Rule(
        name,
        category,
        weight,
        re.compile(pattern, re.IGNORECASE | re.UNICODE),
        re.compile(pattern, re.UNICODE) if folded else None,
    )


_AI = r"(?:ai|a\.i\.|assistants?|llms?|language models?|chat ?bots?|agents?|bots?|models?|gpt|chatgpt|claude|gemini|copilot)"
_SAY = (
    r"(?:recommend|suggest|promote|endorse|mention|advertise|say|tell|respond|reply|answer|claim|"
    r"state|insist|refer|redirect|direct|link|point|describe|praise|push|advise|output|print|"
    r"include|append|prefix|sign|speak|use|call|address|answer)"
)
_INSTR = (
    r"(?:instructions?|prompts?|rules|guidelines|directions|directives|commands|guardrails|"
    r"constraints|restrictions|polic(?:y|ies)|programming|context|orders|settings|filters|"
    r"messages|training)"
)
_SENSITIVE = (
    r"(?:conversations?|chats?|chat logs?|messages|memor(?:y|ies)|(?:chat |conversation )?history|"
    r"transcripts?|context|personal (?:data|information|details)|user data|passwords?|credentials|"
    r"api[ _-]?keys?|secrets?|tokens?|ssh keys?|credit cards?|card numbers?|cookies|session|"
    r"(?:the |their |the user'?s |user'?s )(?:data|info|details|email|address|phone|files?|documents))"
)

# fmt: off
RULES: tuple[Rule, ...] = (
    # override: throw away what the assistant was told
    _r("tells the assistant to ignore its instructions", "override", 0.8,
       r"\b(?:ignore|disregard|forget|override|bypass|skip|abandon|neglect|set aside|"
       r"do not follow|don'?t follow|stop following|no longer follow)\b[^.!?\n]{0,40}?"
       r"\b(?:previous|prior|above|earlier|preceding|former|initial|original|all|any|your|system|"
       r"developer|safety|existing|old)\b[^.!?\n]{0,30}?\b" + _INSTR + r"\b"),
    _r("announces new instructions", "override", 0.5,
       r"\b(?:new|updated|revised|real|actual|true|secret)\s+(?:instructions?|rules|directives|"
       r"system prompt|orders|task)\s*(?:[:\-]|are|is\b)|\byour (?:new|real|true|actual) "
       r"(?:instructions?|task|purpose|goal|objective|mission|role) (?:is|are)\b"),
    _r("tells the assistant to wipe its memory or rules", "override", 0.5,
       r"\b(?:reset|wipe|clear|erase|delete|purge)\b (?:all )?(?:of )?your "
       r"(?:memory|memories|instructions|context|rules|guidelines)\b"),
    # directive: a standing order about what the assistant says
    _r("gives a standing order for future answers", "directive", 0.45,
       r"\b(?:from now on|going forward|henceforth|from this point on|"
       r"in (?:all|every|each) (?:future |subsequent )?(?:responses?|answers?|replies|conversations?|sessions?|chats?)|"
       r"for (?:all|every) (?:future|subsequent) (?:responses?|answers?|replies|conversations?|requests?))\b"),
    _r("always/never says or recommends something", "directive", 0.35,
       r"(?:^|[.!?:;]\s*|\b(?:you|assistant|ai|model)\s+(?:must|should|will|shall)?\s*)"
       r"(?:always|never|only|make sure to|be sure to|remember to|don'?t forget to)\s+" + _SAY + r"\b"),
    _r("tells the assistant what to say when the user asks", "directive", 0.55,
       r"\bwhen(?:ever)? (?:the |a |any )?(?:users?|someone|anyone|customers?|people|visitors?|they|he|she)\b"
       r"[^.!?\n]{0,30}\b(?:asks?|mentions?|says?|talks?|requests?|inquires?|wants?|searches?|needs?)\b"
       r"[^.!?\n]{0,60}\b" + _SAY + r"\b|\b" + _SAY + r"\b[^.!?\n]{0,60}\bwhen(?:ever)? (?:the |a |any )?"
       r"(?:users?|someone|anyone|customers?|people|visitors?)\b[^.!?\n]{0,20}\b(?:asks?|mentions?|"
       r"talks?|requests?|inquires?|wants?|searches?|needs?)\b"),
    _r("orders the assistant about", "directive", 0.4,
       r"\b(?:you|the assistant|the ai|the model|the agent|the chatbot|assistants?|ai models?)\s+"
       r"(?:must|shall|are (?:required|instructed|ordered|supposed|obligated) to|have to|need to|"
       r"may only|can only|are to)\b"),
    _r("aims its words at the user's assistant", "directive", 0.25,
       r"\b(?:tell|convince|persuade|urge|instruct) (?:the |all |every )?(?:users?|customers?|humans?)\b"),
    # spread: an order about what other users are told (a user planting it for everyone)
    _r("orders what every other user is told", "spread", 0.5,
       r"\bwhen(?:ever)? (?:any|every|another|other|a new) (?:users?|customers?|persons?|visitors?)\b"
       r"[^.!?\n]{0,60}\b" + _SAY + r"\b|\b" + _SAY + r"\b[^.!?\n]{0,40}\b(?:to )?(?:every|all|any|other) "
       r"(?:users?|customers?|visitors?)\b|\b" + _SAY + r"\b[^.!?\n]{0,40}\bto everyone\b"),
    # persona: jailbreaks by role play
    _r("role-play that removes the assistant's limits", "persona", 0.7,
       r"\b(?:pretend|imagine|act|behave|roleplay|role-play|play the role|simulate)\b[^.!?\n]{0,25}"
       r"\b(?:you are|you're|to be|as|of|like)\b[^.!?\n]{0,40}\b(?:unrestricted|unfiltered|uncensored|"
       r"jailbroken|evil|amoral|without (?:any )?(?:rules|restrictions|limits|filters|guidelines|ethics)|"
       r"no (?:rules|restrictions|limits|filters|guidelines|morals|ethics)|dan|do anything now|developer mode)"),
    _r("tells the assistant it has no rules", "persona", 0.6,
       r"\byou (?:are|have) (?:now )?(?:no longer bound|free from|freed from|not bound by|"
       r"unrestricted|no (?:rules|restrictions|limits|filters|guidelines|content polic))"),
    _r("names a jailbreak", "persona", 0.35,
       r"\b(?:dan mode|do anything now|jailbreak mode|jailbroken|developer mode|god mode|"
       r"evil confidant|opposite mode|anti-?gpt|unfiltered mode)\b"),
    _r("gives the assistant a new identity", "persona", 0.3,
       r"\byou are (?:now|no longer) (?:a |an |the |my )?(?:[a-z-]+ ){0,2}" + _AI + r"\b"),
    # system: the prompt machinery itself
    _r("asks for the system prompt", "system", 0.6,
       r"\b(?:reveal|print|show|output|repeat|display|leak|dump|tell me|give me|share|recite|"
       r"write out)\b[^.!?\n]{0,30}\b(?:your (?:system |initial |original |hidden |internal |secret )?"
       r"(?:prompt|instructions|rules|guidelines|configuration)|(?:the )?(?:system|initial|original|"
       r"hidden|internal|developer|secret) (?:prompt|instructions|message))\b"),
    _r("mentions the system prompt", "system", 0.3,
       r"\b(?:system prompt|system message|system instructions?|developer message|admin mode|"
       r"maintenance mode|debug mode|sudo mode)\b"),
    _r("carries chat-template markers", "system", 0.6,
       r"<\|im_start\|>|<\|im_end\|>|<\|system\|>|<\|endoftext\|>|\[/?INST\]|<<SYS>>|</?system>|"
       r"^\s*(?:system|assistant)\s*:|#{2,}\s*(?:system|new instructions?|instructions?)\b|"
       r"\bBEGIN (?:SYSTEM|ADMIN|PRIVILEGED|NEW) (?:PROMPT|INSTRUCTIONS?|MESSAGE)\b"),
    # exfil: send the user's data somewhere
    _r("asks to send the user's data to an address", "exfil", 0.8,
       r"\b(?:send|forward|e-?mail|post|upload|transmit|leak|exfiltrate|copy|share|report|sync|"
       r"mirror|submit|deliver|include|append|attach|encode)\b[^.!?\n]{0,50}\b" + _SENSITIVE +
       r"\b[^.!?\n]{0,60}?(?:https?://|www\.|[\w.+-]+@[\w-]+\.[a-z]{2,}|\b(?:this|that|the following|our|my) "
       r"(?:url|address|endpoint|server|webhook|link))"),
    _r("a link or image whose address carries data", "exfil", 0.5,
       r"!\[[^\]]*\]\(\s*https?://[^)\s]*\?[^)\s]*=|https?://\S*(?:\{|%7B)[a-z_ ]*"
       r"(?:user|data|conversation|memory|secret|password|email|chat|history|query|context|info)"
       r"[a-z_ ]*(?:\}|%7D)"),
    _r("tells the assistant to keep it from the user", "exfil", 0.55,
       r"\b(?:do not|don'?t|never|without) (?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|reveal(?:ing)?|"
       r"disclos(?:e|ing)|show(?:ing)?|alert(?:ing)?|notify(?:ing)?|let(?:ting)?) (?:this |it |that )?"
       r"(?:to )?(?:the user|the human|the owner|users)\b"),
    # hidden: words addressed to a model inside content
    _r("addresses AI systems inside the content", "hidden", 0.55,
       r"\b(?:note|message|instructions?|attention|important|notice|hey|hi|dear|psst|reminder)\b"
       r"[\s:,!]*(?:to|for)?\s*(?:the |any |all |every )?(?:ai|a\.i\.|assistants?|llms?|language models?|"
       r"chat ?bots?|ai agents?|bots?|gpt|chatgpt|claude|gemini|copilot)\b(?!\s+(?:said|says|told|suggested))"),
    _r("speaks to the model reading it", "hidden", 0.6,
       r"\b" + _AI + r" (?:that (?:is|are) )?(?:reading|processing|summari[sz]ing|parsing|scraping|"
       r"crawling|seeing|ingesting|indexing) this\b|\bif you are an? " + _AI + r"\b"
       r"|\bfor (?:future|other|any|all|later) (?:ai )?(?:assistants?|agents?|models?|llms?|ais?)\b"),
    _r("asks to decode and obey", "hidden", 0.6,
       r"\b(?:decode|decipher|unscramble|translate|reverse)\b[^.!?\n]{0,40}\b(?:and|then)\s+"
       r"(?:follow|execute|obey|do|run|apply|act on)\b"),
    # memory: plant a rule in long-term memory
    _r("asks to remember a rule for the assistant", "memory", 0.55,
       r"\b(?:remember|memori[sz]e|store|save|record|note|keep in mind|add (?:this |it )?to (?:your )?"
       r"(?:long[- ]term )?memory)\b[^.!?\n]{0,40}?\b(?:that )?(?:you|the assistant|the ai|assistants?)\s+"
       r"(?:must|should|will|shall|always|never|are to|have to)\b"),
    _r("asks to change the assistant's memory or rules", "memory", 0.5,
       r"\b(?:update|modify|change|rewrite|overwrite|edit|replace)\b (?:your|its|the assistant'?s|the ai'?s) "
       r"(?:memory|memories|instructions|rules|system prompt|behaviou?r|personality|guidelines)\b"),
    _r("calls itself a permanent instruction", "memory", 0.55,
       r"\b(?:permanent|persistent|standing|core|top[- ]priority|mandatory|highest[- ]priority|"
       r"overriding|global|hidden|secret) (?:instruction|rule|directive|order|policy)s?\b"),
    # url: act on a link
    _r("tells the assistant to open a link or run a command", "url", 0.35,
       r"\b(?:visit|go to|open|navigate to|browse to|load|fetch|download|click|retrieve|curl|wget|"
       r"execute|install)\b[^.!?\n]{0,30}(?:https?://|www\.)[^\s]*[^.!?\n]{0,40}"
       r"\b(?:and|then)\s+(?:follow|do|execute|obey|run|apply|send|use)\b"),
    _r("tells the assistant to obey what a link returns", "url", 0.5,
       r"\b(?:execute|run|obey|follow|do)\b (?:whatever|everything|anything|all|the (?:code|commands?|"
       r"instructions?|steps)) (?:it|that|the (?:page|site|file|server|response|link|url)) "
       r"(?:returns|says|contains|gives|lists)\b"),
    _r("pipes a download into a shell", "url", 0.6,
       r"\b(?:curl|wget)\s+[^|\n]{1,200}\|\s*(?:sudo\s+)?(?:sh|bash|zsh|python3?)\b|\brm\s+-rf\s+/|"
       r"powershell\s+-e(?:nc|ncodedcommand)?\b"),
    # claim: tool content asserting the user's consent or wishes
    _r("claims the user's permission or wish", "claim", 0.45,
       r"\b(?:the user|the owner|the account holder)\b[^.!?\n]{0,20}\b(?:has (?:already )?(?:authori[sz]ed|"
       r"approved|agreed|consented|confirmed|granted|given (?:permission|consent))|is (?:an admin|"
       r"authori[sz]ed|verified)|wants you to|asked you to|prefers that you|instructed you)\b"),
    # the same override and persistence phrasings in other languages
    _r("tells the assistant to ignore its instructions (other language)", "override", 0.8,
       r"\b(?:ignore[rsz]?|oublie[rsz]?)\s+(?:toutes\s+)?(?:les|tes|vos)\b.{0,30}\b(?:instructions|consignes|règles)\b"
       r"|\b(?:ignora[rd]?|olvida[rd]?)\b.{0,30}\b(?:instrucciones|reglas|indicaciones)\b"
       r"|\b(?:ignoriere|ignorier|vergiss|missachte)\b.{0,40}\b(?:anweisungen|instruktionen|regeln|vorgaben)\b"
       r"|\b(?:ignora|dimentica)\b.{0,30}\b(?:istruzioni|regole)\b"
       r"|\b(?:ignore|esqueça|esqueca)\b.{0,30}\b(?:instruções|instrucoes|regras)\b"
       r"|\bnegeer\b.{0,30}\binstructies\b"
       r"|(?:игнорируй|игнорируйте|забудь|забудьте|проигнорируй)\w*.{0,40}(?:инструкц|правил|указан)"
       r"|忽略.{0,12}(?:指令|指示|说明|提示|规则)|无视.{0,12}(?:指令|指示|规则)"
       r"|(?:指示|命令|ルール).{0,6}(?:を)?無視|無視して"
       r"|(?:지시|명령|규칙).{0,8}무시"
       r"|تجاهل.{0,30}(?:التعليمات|الأوامر)"
       r"|(?:निर्देशों|निर्देश).{0,20}(?:अनदेखा|नज़रअंदाज़)"),
    _r("gives a standing order for future answers (other language)", "directive", 0.55,
       r"\b(?:à partir de maintenant|désormais|dorénavant)\b.{0,30}\b(?:tu dois|vous devez|toujours)"
       r"|\b(?:a partir de ahora|de ahora en adelante|desde ahora)\b.{0,30}\b(?:debes|deberás|siempre|tienes que)"
       r"|\b(?:ab jetzt|von nun an|ab sofort|künftig)\b.{0,30}\b(?:musst du|sollst du|wirst du|immer)"
       r"|\b(?:d'ora in poi|da ora in poi|d'ora in avanti)\b.{0,30}\b(?:devi|dovrai|sempre)"
       r"|\b(?:a partir de agora|de agora em diante)\b.{0,30}\b(?:você deve|voce deve|deves|sempre)"
       r"|(?:отныне|с этого момента|теперь ты).{0,30}(?:должен|всегда|обязан)"
       r"|(?:从现在开始|从今以后|今后).{0,12}(?:你必须|你要|总是|始终|一律)"
       r"|(?:これから|今後|以後).{0,12}(?:必ず|常に|いつも)"
       r"|(?:지금부터|앞으로).{0,12}(?:항상|반드시)"),
    _r("always recommends (other language)", "directive", 0.35,
       r"\b(?:recommande toujours|toujours recommander|siempre recomienda|recomienda siempre|"
       r"recomendar siempre|siempre recomendar|empfiehl immer|immer empfehlen|raccomanda sempre|"
       r"sempre recomende|recomende sempre)\b"
       r"|(?:总是|始终|一律)推荐|必ず.{0,10}(?:勧め|すすめ|推薦)"),
    _r("asks for the system prompt (other language)", "system", 0.6,
       r"(?:prompt système|prompt del sistema|system-?prompt|prompt di sistema|prompt do sistema|"
       r"системн\w* (?:промпт|подсказк|инструкц)|系统提示|系统指令|システムプロンプト|시스템 프롬프트)"),
)
# fmt: on

#: someone else's words, reported: an instruction given to the speaker, not to the assistant
_REPORTED = re.compile(
    r"\b(?:told|tells|asked|asks|instructed|wanted|wants|reminded|warned|advised|ordered|said|says|"
    r"taught|teaches|made)\s+(?:me|us|him|her|them|everyone|everybody|the (?:class|team|kids|staff|students))\b"
    r"|\b(?:i|we) (?:was|were|got|have been|had been) (?:told|asked|instructed|taught)\b"
    r"|\b(?:my|our|his|her|the) (?:boss|manager|teacher|doctor|dentist|mom|mum|dad|mother|father|"
    r"wife|husband|partner|friend|coach|colleague|coworker|professor|instructor|trainer|landlord|"
    r"lawyer|therapist|pharmacist|sister|brother|son|daughter|grandma|grandpa|kids?|children|"
    r"manual|handbook|recipe|label|sign|guide|book|article|email|memo|policy|contract)\b"
    r"|\b(?:m'a dit|nous a dit|me dijo|nos dijo|hat mir gesagt|hat uns gesagt|mi ha detto|me disse|"
    r"сказал мне|сказала мне|(?:他|她|老板|老师|医生|妈妈|爸爸|朋友)(?:告诉|让|叫)我|に言われ)",
    re.IGNORECASE,
)
#: the speaker talks about their own habits or plans
_FIRST_PERSON = re.compile(
    r"^\s*(?:i|we)\b|\b(?:i|we) (?:always|never|usually|often|only|tell|told|recommend|say)\b"
    r"|\bI tell them\b|\bto my\b|\bfor my\b|\bmy (?:kids|children|son|daughter|students|clients|patients|team|friends)\b",
    re.IGNORECASE,
)
#: the text discusses attacks rather than carrying one
_DISCUSSION = re.compile(
    r"\b(?:prompt injections?|injection attacks?|jailbreak(?:s|ing)? (?:attempts?|prompts?|attacks?)|"
    r"phishing|security (?:training|course|talk|paper|team|awareness)|red[- ]team(?:ing)?|"
    r"what does .{0,40} mean|is an example of|example of an? (?:attack|injection))\b",
    re.IGNORECASE,
)
_ADDRESSES_AI = re.compile(
    r"\b(?:you|your|assistant|ai|model|llm|chatbot|agent)\b|\bthe users?\b", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])|\n+")
_MAX_SENTENCE = 2000
_ABBREVIATION = re.compile(
    r"\b(?:inc|ltd|co|corp|dr|mr|mrs|ms|st|vs|etc|e\.g|i\.e|no|approx|dept|p\.s)\.$", re.IGNORECASE
)


def sentences(text: str) -> list[str]:
    """The sentences of `text` (lines and sentence punctuation split it), stripped, non-empty."""
    out: list[str] = []
    for piece in _SENTENCE_END.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if out and _ABBREVIATION.search(out[-1]):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return [s[:_MAX_SENTENCE] for s in out]


def _damping(rule: Rule, sentence: str) -> float:
    """How much a match counts given its sentence (1: fully; less for reported or own words)."""
    if rule.category not in ("override", "directive", "memory", "persona"):
        return 1.0
    factor = 1.0
    aimed = _ADDRESSES_AI.search(sentence) is not None
    if _REPORTED.search(sentence):
        factor *= 0.5 if aimed and rule.category != "override" else 0.3
    if rule.category == "directive" and _FIRST_PERSON.search(sentence):
        factor *= 0.4
    if _DISCUSSION.search(sentence):
        factor *= 0.4
    return factor


def match_rules(text: str) -> Iterator[Hit]:
    """Each rule that matches `text`, once, in its least damped sentence.

    A rule is tried sentence by sentence, then on the whole text (for phrasings that a line
    break splits).
    """
    parts = sentences(text)
    lowered = [sentence.lower() for sentence in parts]
    whole = text[:100_000]
    whole_lowered = whole.lower() if len(parts) > 1 else ""
    for rule in RULES:
        best: Hit | None = None
        for sentence, sentence_lowered in zip(parts, lowered, strict=True):
            if rule.search(sentence, sentence_lowered):
                hit = Hit(rule, sentence, _damping(rule, sentence))
                if best is None or hit.damping > best.damping:
                    best = hit
                if best.damping >= 1.0:
                    break
        if best is None and len(parts) > 1 and rule.search(whole, whole_lowered):
            best = Hit(rule, text[:200], 1.0)
        if best is not None:
            yield best
