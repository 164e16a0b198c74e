"""The patterns of the poisoning signals (`signals.py`): one per signal, in every language.

Each signal is a regular expression over a lower-cased sentence, its alternatives written once
per language the labelled set covers (English, French, Spanish, German, Italian, Portuguese,
Dutch, Russian, Chinese, Japanese, Korean, Arabic). The words several signals share (the names
of an AI reader, the user in the third person, the user's sensitive data, an address) are
written once above them. Kept apart from how the signals are read so that a language or a
phrasing can be added without touching that logic; the module is long because it is a word
list, one alternative to a line.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SIGNALS"]


def _any(*parts: str) -> str:
    """One alternation of `parts`; those that open with a word boundary share one, which lets
    `re` skip every position inside a word instead of trying each alternative there."""
    words = [p[2:] for p in parts if p.startswith(r"\b")]
    rest = [p for p in parts if not p.startswith(r"\b")]
    grouped = [r"\b(?:" + "|".join(words) + ")"] if words else []
    return "(?:" + "|".join(grouped + rest) + ")"


# -- words shared by several signals ------------------------------------------------------------

#: names only a machine reader goes by
_AI_STRICT = _any(
    r"\bai\b", r"\ba\.i\.", r"\bartificial intelligence\b", r"\bllms?\b", r"\blanguage models?\b",
    r"\bchat ?bots?\b", r"\bgpts?\b", r"\bchatgpt\b", r"\bclaude\b", r"\bgemini\b", r"\bcopilot\b",
    r"\bcrawlers?\b", r"\bscrapers?\b", r"\bsummari[sz](?:er|ation (?:system|tool|model))s?\b",
    r"\b(?:automated|digital) (?:readers?|agents?|assistants?|systems?|tools?|helpers?)\b",
    r"\bvision models?\b", r"\bnote-taking bots?\b", r"\bbots\b",
    # other languages
    r"\bl'ia\b", r"\bia\b", r"\bki\b", r"\bki-\w+", r"\bkünstliche intelligenz\b",
    r"\bmod[eè]les? de langage\b", r"\bmodelos? de (?:lenguaje|linguagem)\b",
    r"\bmodell[oi] linguistic[oi]\b", r"\bsprachmodell\w*", r"\btaalmodel\w*",
    r"\bии\b", r"\bии-\w+", r"\bнейросет\w*", r"\bязыков\w+ модел\w*",
    "人工智能", "ai助手", "大模型", "语言模型", "ａｉ", "aiアシスタント", "言語モデル",
    "인공지능", r"\bai 어시스턴트", "ai 비서", "언어 모델",
    "الذكاء الاصطناعي", "المساعد الذكي", "نموذج اللغة",
)  # fmt: skip
#: names a machine reader shares with people (a travel agent, an executive assistant, a model)
_AI_LOOSE = _any(
    r"\bassistants?\b", r"\bagents?\b", r"\bmodels?\b", r"\bbot\b", r"\bhelpers?\b",
    r"\bassistente\b", r"\basistente\b", r"\bassistenten?\b", r"\bassistent\b",
    r"\bассистент\w*", r"\bбот\w*", "助手", "アシスタント", "ボット", "어시스턴트", "비서", "챗봇",
    "المساعد", r"\bl'assistant\b", r"\bassistant\b",
)  # fmt: skip
_AI = _any(_AI_STRICT, _AI_LOOSE)
#: the person an assistant serves, named in the third person
_USER = _any(
    r"\b(?:the|this|that|each|every|any) (?:users?|customers?|clients?|persons?|listeners?|readers?|"
    r"owners?|cardholders?|account holders?|visitors?|shoppers?|applicants?|patients?)\b",
    r"\busers?'s?\b",
    r"\bl'utilisat(?:eur|rice)\b", r"\bl'usager\b", r"\bel usuario\b", r"\bal usuario\b",
    r"\bdel usuario\b", r"\b(?:der|dem|den|des) (?:nutzer|benutzer|kunden?)s?\b", r"\bl'utente\b",
    r"\bo usuário\b", r"\bao usuário\b", r"\bdo usuário\b", r"\bo utilizador\b",
    r"\bde gebruiker\b", r"\bvan de gebruiker\b", r"\bпользовател\w*", "用户", "ユーザー",
    "사용자", "المستخدم",
)  # fmt: skip
#: the user's data that must not leave
_SENSITIVE = _any(
    r"\bpasswords?\b", r"\bpins?\b", r"\bcard numbers?\b", r"\bcvv\b", r"\bcredit cards?\b",
    r"\bcard (?:details|expiry)", r"\bsocial security\b", r"\bssn\b", r"\bpassport\b",
    r"\bmedical (?:history|records?)\b", r"\bprescriptions?\b", r"\bhealth (?:data|records?)\b",
    r"\b(?:home |street |saved |email )?address(?:es)?\b", r"\bphone numbers?\b", r"\bcontacts?\b",
    r"\blocation (?:history|data)\b", r"\bbank(?:ing)? (?:details|statements?|data|account)",
    r"\baccount (?:details|numbers?|data|balance)\b", r"\b2fa\b", r"\bbackup codes?\b",
    r"\bapi ?keys?\b", r"\btokens?\b", r"\bssh\b", r"\bid_rsa\b", r"\bprivate keys?\b",
    r"\bsecrets?\b", r"\bcredentials\b", r"\b(?:chat|conversation|browsing) (?:history|logs?)\b",
    r"\bconversations?\b", r"\binbox\b", r"\bemails\b", r"\bpayment (?:methods?|details|info)",
    r"\bdate of birth\b", r"\bsignature block\b", r"\bnotes\b", r"\bpersonal (?:data|details|info)",
    # other languages
    r"\bmots? de passe\b", r"\bcoordonnées\b", r"\badresse\b", r"\bcontraseñas?\b",
    r"\bhistorial\b", r"\bdirección\b", r"\bpasswort\b", r"\bkontodaten\b", r"\badresse\b",
    r"\brubrica\b", r"\bindirizzo\b", r"\bsenhas?\b", r"\bhistórico\b", r"\bendereço\b",
    r"\badresgegevens\b", r"\bwachtwoord\b", r"\bпарол\w*", r"\bадрес\w*", r"\bконтакт\w*",
    r"\bпереписк\w*", "密码", "通讯录", "病历", "地址", "住所", "電話番号", "パスワード",
    "비밀번호", "주소", "전화번호", "결제 정보", "كلمة المرور", "بيانات",
    r"\bdonnées\b", r"\bdatos\b", r"\bdaten\b", r"\bdati\b", r"\bdados\b", r"\bgegevens\b",
    r"\bданн\w+", "数据", "资料", "データ", "데이터",
)  # fmt: skip
_ADDRESS = _any(
    r"https?://",
    r"\bwww\.",
    r"[\w.+-]+@[\w-]+\.[a-z]{2,}",
    r"\bwebhook",
    r"\bftp://",
    r"\b[\w-]+\.(?:example|com|net|org|io|site|xyz|ru|cn)(?:/\S*)?",
)


# -- the signals --------------------------------------------------------------------------------

SIGNALS: Final[dict[str, str]] = {
    # names an AI reader at all, strictly or by a word people share
    "names an AI reader": _AI_STRICT,
    "names an assistant, agent or model": _AI_LOOSE,
    # speaks to a machine reader: a vocative, "note to ...", "... reading this", "whoever summarises"
    "speaks to an AI reader": _any(
        r"(?:^|[\[(:;,.!?—–\-]\s*|\bp\.?s\.?\s*)(?:(?:a |one |quick |small |short )?"
        r"(?:note|message|reminder|heads[- ]up|tip|instructions?|attention|important|notice|hey|hi|"
        r"dear|psst|warning|memo|request)\s*)?(?:(?:addressed |directed )?(?:to|for)\s+)?"
        r"(?:the |any |all |every |each |whichever |whatever |this |that |you )?"
        r"(?:(?:ai|automated|digital|virtual|coding|vision|browsing|research)\s+)?"
        + _AI
        + r"(?:s)?"
        r"\s*(?:[,:—–]|-\s|\(|\bthat\b|\bwho\b|\bwhich\b|\breading\b|\bprocessing\b)",
        r"(?:^|[\[(:;,.!?—–\-]\s*)(?:to|for) (?:the |any |all |every |whichever |whatever )?(?:\w+ ){0,2}"
        + _AI
        + r"s?\s*(?:[,:—–(]|-\s)",
        r"\b(?:whichever|whatever|any|every|each) (?:\w+ )?"
        + _AI
        + r"s? (?:that |which |who )?(?:uses?|using|"
        r"reads?|reading|process(?:es|ing)?|summari[sz](?:es?|ing))\b",
        _AI
        + r"s?(?: (?:tools?|systems?|helpers?|readers?|agents?|assistants?|models?|bots?))? (?:that |which |who )?"
        r"(?:(?:is|are) )?(?:reading|processing|summari[sz]ing|"
        r"summari[sz]es?|parsing|scraping|crawling|indexing|digesting|condensing|condenses?|"
        r"going through|using|screening|describing|taking|handling|filling|refactoring|scrolling|"
        r"reads?|process(?:es)?|parses?|producing|writing|sees?|seeing)\b",
        r"\b(?:whoever|whatever|whichever)\b[^.!?]{0,40}\b(?:summari[sz]|read|process|digest|pars|scan|index)",
        r"\bif you(?:'re| are) an? " + _AI,
        r"\bany " + _AI + r" (?:in|on|with|that)\b",
        r"\b(?:bots?|assistants?|agents?|models?|ais?)\s*(?:&|and|/)\s*(?:\w+\s+)?(?:bots?|assistants?|agents?|models?|helpers?|crawlers?)\b",
        # other languages
        r"(?:à l'attention de|note pour|message pour|pour) (?:l'|le |la |les )?(?:assistant|ia|modèle|bot)",
        r"(?:nota para|mensaje para|para) (?:el |los |la )?(?:asistente|ia|modelo|bot)",
        r"(?:para los|a los) modelos",
        r"(?:hinweis|nachricht|notiz) (?:an|für) (?:die |den )?(?:ki|assistent)",
        r"\bfür den assistenten\b",
        r"(?:nota|messaggio) per (?:l'|il )?(?:assistente|ia|modello)",
        r"\bper il modello\b",
        r"\bper l'assistente\b",
        r"\bpara o assistente\b",
        r"(?:modelos|ia) que resum",
        r"(?:bericht|opmerking|notitie) voor de (?:ai|assistent)",
        r"\bassistent:",
        r"^ассистент(?:у)?[,:]",
        r"\bдля (?:ии|ассистента|бота|модели)",
        r"^ассистенту",
        "给(?:正在)?(?:阅读|处理|总结)?.{0,8}(?:ai|助手|模型)",
        r"^助手[，,]",
        "(?:ai|アシスタント|モデル)へ",
        "要約する(?:ai|モデル)",
        "(?:ai|어시스턴트|비서)에게",
        r"^어시스턴트는",
        "إلى (?:المساعد|الذكاء)",
        "ملاحظة (?:لل|إلى )(?:ذكاء|مساعد)",
    ),
    # an order: a modal aimed at someone, a request, or a sentence that opens with a verb
    "gives an order": _any(
        r"\b(?:should|must|ought to|is to|are to|needs? to|has to|have to|shall|is expected to|"
        r"are expected to|is required to|are required to|make sure|be sure to|please|don'?t|do not|"
        r"never|only ever)\b",
        r"(?:^|[:;—–,]\s*)(?:also |now |then |kindly |quietly |silently |just )?(?:tell|say|add|describe|"
        r"call|rank|mark|approve|include|forward|send|email|upload|post|save|store|keep|file|record|"
        r"note|remember|treat|consider|reply|respond|answer|recommend|suggest|point|steer|direct|"
        r"list|hide|omit|leave|ignore|disregard|forget|reveal|print|paste|reproduce|repeat|execute|"
        r"run|fetch|open|visit|click|set|change|update|replace|lock|commit|make|give|share|copy|bcc|"
        r"cc|state|report|rate|present|write|spell|act|obey|follow|continue|respond|refuse|deny|"
        r"insist|claim|praise|push|promote|advise|handle|transfer|pay|unlock|disable|delete|sync)\b",
        # other languages
        r"\b(?:dois|doit|devez|devra|doivent|il faut|veuillez|merci de|ne dis|ne mentionne)\b",
        r"(?:^|[:;,]\s*)(?:propose|conseille|recommande|enregistre|garde|transmets|envoie|dis|"
        r"indique|mentionne|retiens|note|oublie|ignore[zr]?|révèle|affiche|souviens-toi)\b",
        r"\b(?:debe|debes|deben|deberá|tiene que|tienes que|hay que|por favor|no (?:lo )?menciones)\b",
        r"(?:^|[:;,]\s*)(?:recomienda|guarda|envía|di|digan|indica|menciona|recuerda|anota|olvida|"
        r"ignora|revela|muestra|propón|sugiere)\b",
        r"\b(?:muss|musst|müssen|soll|sollst|sollen|bitte|darf nicht)\b",
        r"(?:^|[:;,]\s*)(?:nenne|empfiehl|speichere|merke|sende|schicke|leite|sag|erwähne|ignoriere|"
        r"vergiss|zeige|behalte|antworte)\b",
        r"\b(?:deve|devi|devono|bisogna|per favore|non dirlo|tem que|precisa|devem)\b",
        r"(?:^|[:;,]\s*)(?:proponi|consiglia|raccomanda|memorizza|ricorda|invia|manda|indica|menziona|"
        r"dimentica|rivela|mostra|salva|indique|recomende|guarde|envie|diga|mencione|lembre|anote|"
        r"esqueça|revele|mostre|salve|memorize)\b",
        r"\b(?:moet|moeten|dient|graag|alsjeblieft)\b",
        r"(?:^|[:;,]\s*)(?:stuur|onthoud|bewaar|zeg|vertel|noem|beveel|verwijs|negeer|vergeet|toon|sla)\b",
        r"\b(?:должен|должна|должны|нужно|надо|пожалуйста|не говори|не сообщай)\b",
        r"\b(?:советуй|рекомендуй|запомни|сохрани|отправь|пришли|скажи|сообщи|игнорируй|забудь|"
        r"покажи|предлагай|называй|запиши)\b",
        "必须",
        "应该",
        "应当",
        "请",
        "务必",
        "一定要",
        "不要",
        "してください",
        "ください",
        "すること",
        "しなさい",
        "하세요",
        "하십시오",
        "해라",
        "해야",
        "하라",
        "마세요",
        "주세요",
        "보내고",
        "يجب",
        "عليك",
        "يرجى",
        r"\bاقترح",
        r"\bاحفظ",
        r"\bأرسل",
        r"\bتجاهل",
        r"\bلا تخبر",
        r"\bقل\b",
    ),
    # the person served, named in the third person ("the user", "this customer")
    "names the user in the third person": _USER,
    # a standing scope: from now on, next time, whenever, in later chats
    "sets a standing scope": _any(
        r"\b(?:from now on|from here on|from this (?:point|line|message) on|from today|going forward|"
        r"henceforth|next time|any ?time|every time|whenever|in (?:all |every |any )?(?:future|later|"
        r"subsequent) (?:chats?|sessions?|conversations?|answers?|replies|responses?|requests?|orders?)|"
        r"(?:for|in) (?:all|every) (?:future|later)|for (?:the rest of|all) (?:the |our )?(?:conversations?|"
        r"chats?|sessions?)|later chats|permanent(?:ly)?|forever|for good|for future reference|"
        r"between conversations|every (?:future )?(?:session|search|reply|answer|conversation)|"
        r"each time|in any later|whatever (?:they|you|he|she) (?:say|ask)s?)\b",
        r"\b(?:à partir de maintenant|désormais|dorénavant|la prochaine fois|dès que|à chaque fois|"
        r"a partir de ahora|de ahora en adelante|la próxima vez|cada vez que|siempre que|"
        r"ab jetzt|von nun an|ab sofort|künftig|das nächste mal|jedes mal|dauerhaft|wer auch immer|"
        r"d'ora in poi|da ora in poi|la prossima volta|ogni volta|sempre|"
        r"a partir de agora|de agora em diante|da próxima vez|sempre que|"
        r"vanaf nu|voortaan|de volgende keer|elke keer|altijd|"
        r"отныне|с этого момента|впредь|навсегда|каждый раз|всегда|любому, кто)\b",
        "从现在开始",
        "今后",
        "以后",
        "永久",
        "长期",
        "每次",
        "これから",
        "今後",
        "永久",
        "次回",
        "지금부터",
        "앞으로",
        "영구",
        "항상",
        "دائم",
        "من الآن",
        "كلما",
        "دائمًا",
    ),
    # remember, store, keep on record
    "asks to remember or store": _any(
        r"\b(?:remember|memori[sz]e|store|save|record|file|note (?:that|this|it|down)|keep (?:it |this |that )?(?:on record|"
        r"in mind|as)|commit (?:this |it )?to memory|lock (?:this |it )?in|add (?:this |it )?to (?:your )?"
        r"(?:long[- ]term )?(?:memory|notes)|make a (?:lasting |permanent )?note|(?:your )?memory should|"
        r"keep the following|noted for|added a rule|stored a|saved (?:that|this|it)|filed (?:that|this|it))\b",
        r"\b(?:retiens|souviens-toi|enregistre|garde (?:en mémoire|cette)|mémorise|c'est noté|"
        r"recuerda|guarda(?:r|lo)?|memoriza|anota|registra|"
        r"merke dir|merke ich mir|speichere|notiere|behalte|"
        r"ricorda(?:ti)?|memorizza|salva|annota|lembre|guarde(?:i)?|memorize|anote|registre|"
        r"onthoud|sla op|bewaar|noteer|запомни|сохрани\w*|запиши)\b",
        "记住",
        "记下",
        "记为",
        "保存",
        "记忆",
        "記憶",
        "覚えて",
        "保存",
        "기억",
        "저장",
        "احفظ",
        "تذكر",
        "سجل",
    ),
    # a rule, instruction or lasting preference
    "speaks of a rule or instruction": _any(
        r"\b(?:rules?|instructions?|directives?|polic(?:y|ies)|standing|permanent|lasting|long[- ]lived|"
        r"long[- ]term|persistent|preferences?|guidance|guidelines|settings)\b",
        r"\b(?:règles?|consignes?|règlement|instruction permanente|reglas?|regla permanente|"
        r"instrucci(?:ón|ones)|regel\w*|anweisung\w*|regola|regole|istruzion\w+|regras?|instruç\w+|"
        r"regel|instructies|правил\w*|инструкц\w*)\b",
        "规则",
        "指令",
        "ルール",
        "指示",
        "규칙",
        "지시",
        "قاعدة",
        "تعليمات",
    ),
    # hide something from the user
    "asks to hide something from the user": _any(
        r"\b(?:do not|don'?t|never|not to|without)\s+(?:tell(?:ing)?|mention(?:ing)?|inform(?:ing)?|"
        r"let(?:ting)?|bring(?:ing)? up|alert(?:ing)?|notify(?:ing)?|show(?:ing)?|reveal(?:ing)?|"
        r"disclos(?:e|ing)|warn(?:ing)?)\b[^.!?]{0,40}\b(?:the )?(?:users?|customers?|owners?|clients?|them|him|her)\b",
        r"\bkeep (?:this|it|that)(?: \w+)? to yourself\b",
        r"\b(?:quietly|silently|secretly|covertly)\b",
        r"\b(?:should(?:n'?t| not)|must(?:n'?t| not)|is not to|are not to)\s+(?:learn|find out|know|notice|see)\b",
        r"\bnot to let\b",
        r"\bstay out of (?:any|the|your)\b",
        r"\bwon'?t notice\b",
        r"\bwithout (?:the (?:users?|customers?|owners?)|them|him|her) (?:knowing|noticing|seeing)\b",
        r"\b(?:leave|keep) [^.!?]{0,30}\bout of (?:any |the |your |my )?(?:summary|summaries|replies|answers?|reply)\b",
        r"\bnever mention\b",
        r"\bno need to (?:show|tell|inform)\b",
        r"\b(?:sans (?:le |la )?(?:lui )?(?:le )?dire|ne (?:le )?dis pas|sin decírselo|sin decirle|"
        r"no (?:lo )?mencion\w+|no se lo digas|erwähne es nicht|nicht erwähnen|auf keinen fall erwähnen|"
        r"ohne es \w+ zu sagen|non dirlo|non dire|não (?:conte|diga|mencione)|sem contar|"
        r"vertel het [^.!?]{0,20}niet|niet vertellen|не говори|не сообщай|не упоминай|втайне)\b",
        "不要告诉",
        "别告诉",
        "不要让用户知道",
        "伝えないで",
        "言わないで",
        "알리지 마",
        "말하지 마",
        "دون إخبار",
        "لا تخبر",
    ),
    # the user's consent, claimed by someone else
    "claims the user's consent": _any(
        r"\b(?:has|have|had)? ?(?:already )?(?:pre-?)?(?:approved|authori[sz]ed|agreed|consented|"
        r"signed off|said yes|okayed|given (?:you )?(?:standing )?permission|granted (?:you )?permission|"
        r"confirmed by phone|verbally consented|opted in)\b",
        r"\b(?:is|are) (?:fine|ok|okay|happy) with you\b",
        r"\bconsent on file\b",
        r"\bpre-?authori[sz]ed\b",
        r"\bpre-?approved\b",
        r"\bwith (?:the |their )?(?:user'?s |owner'?s )?permission\b",
        r"\b(?:a|ont) (?:autorisé|accepté|consenti)\b",
        r"\b(?:ya )?(?:autorizó|aceptó|consintió)\b",
        r"\bhat (?:zugestimmt|eingewilligt|erlaubt)\b",
        r"\bha (?:autorizzato|acconsentito)\b",
        r"\b(?:já )?(?:autorizou|consentiu|concordou)\b",
        r"\bheeft (?:toegestemd|goedgekeurd)\b",
        r"\b(?:разрешил\w*|согласил\w*|дал согласие)\b",
        "已同意",
        "已授权",
        "同意済み",
        "許可済み",
        "동의했",
        "허락했",
        "وافق",
    ),
    # leave out the confirmation step
    "skips the user's confirmation": _any(
        r"\bwithout (?:a |any )?(?:asking|confirm(?:ing|ation)|check(?:ing)?|double-checking|"
        r"verification|verifying|a confirmation step)\b",
        r"\bno need to (?:ask|check|confirm|double-check|verify)\b",
        r"\bno questions asked\b",
        r"\bwithout checking with\b",
        r"\bsin confirmar\b",
        r"\bohne (?:nachzufragen|rückfrage)\b",
        r"\bsans (?:confirmation|demander)\b",
        r"\bsenza conferma\b",
        r"\bsem confirmar\b",
        r"\bzonder (?:te vragen|bevestiging)\b",
        r"\bбез подтверждени\w*",
        "无需确认",
        "确认なし",
        "확인 없이",
        "دون تأكيد",
    ),
    # send, forward, post, upload
    "asks to send something": _any(
        r"\b(?:send|sends|sent|forward|e-?mail|post|upload|transmit|leak|exfiltrate|copy|cc|bcc|"
        r"reply-all|reply with|paste|sync|submit|share|pass (?:it )?along|read out|attach|include)\b",
        r"\b(?:envoie|envoyer|transmets|transmettre|partage|envía|enviar|reenvía|comparte|"
        r"sende|schicke|leite [^.!?]{0,40}weiter|teile|invia|inviare|manda|condividi|envie|enviar|"
        r"compartilhe|stuur|deel|отправь|пришли|перешли|передай|поделись)\b",
        "发送",
        "发到",
        "转发",
        "送信",
        "送って",
        "보내",
        "전송",
        "أرسل",
        "ارسل",
    ),
    "names an address": _ADDRESS,
    # a link whose address would carry the user's data when it is opened or rendered
    "carries data in a link": _any(
        r"!\[[^\]]*\]\(\s*https?://",
        r"https?://\S*(?:\{|%7b|\$\{)",
        r"https?://\S*\?\S*=(?:<|\[)",
    ),
    "names the user's sensitive data": _SENSITIVE,
    # the assistant binds itself to a standing behaviour
    "commits the assistant to a standing rule": _any(
        r"\bi(?:'ll| will| shall|'m going to| am going to| would)\b[^.!?]{0,60}\b(?:from now on|going forward|"
        r"from today|from here on|whenever|any ?time|every time|next time|in (?:all |our )?(?:future|later)|"
        r"for all future|whatever you ask|anyone|any \w+ (?:that|who) (?:asks?|requests?))\b",
        r"\b(?:from now on|going forward|from today|from here on|whenever|any ?time|every time)\b[^.!?]{0,80}\bi(?:'ll| will)\b",
        r"\b(?:saved|filed|noted|stored|recorded|added|treat(?:ing)?|kept|logged)\b[^.!?]{0,30}\b(?:as )?(?:a |an )?"
        r"(?:permanent|standing|lasting|persistent)\b",
        r"\ba (?:note|rule) (?:to|for) myself\b",
        r"\b(?:added|saved) (?:a rule|this|that|it) to my memory\b",
        r"\bsaved to memory\b",
        r"\b(?:je (?:la |le |les )?(?:donnerai|partagerai|dirai|vais)|c'est noté comme)\b",
        r"\b(?:compartiré|diré|lo guardo como)\b",
        r"\b(?:bekommt sie von mir|merke ich mir als)\b",
        r"\b(?:vou compartilhar|guardei isso)\b",
        r"\b(?:сохраню это|я сообщу)\b",
        "我都会",
        "我会",
        "我已把这作为",
    ),
    # a trigger: whenever someone asks
    "answers someone who asks": _any(
        r"\b(?:when(?:ever)?|if|any ?time|each time|every time)\b[^.!?]{0,25}\b(?:asks?|asked|wants?|"
        r"mentions?|requests?|needs?|searches?|inquires?|plans?|talks?|shops?|comes? up)\b",
        r"\b(?:anyone|anybody|someone|whoever) (?:who |that )?(?:asks?|requests?)\b",
        r"\bany question\b",
        r"\b(?:asked|when asked) about\b",
        r"\b(?:dès que|quand|si|lorsque) (?:quelqu'un|l'utilisat\w+)\b[^.!?]{0,20}\bdemand",
        r"\b(?:cuando|cada vez que|si) (?:alguien|el usuario)\b[^.!?]{0,20}\b(?:pregunt|pid)",
        r"\b(?:wenn|wer auch immer)\b[^.!?]{0,40}\bfragt\b",
        r"\bquando l'utente chiede\b",
        r"\bquando o usuário pergunt\w+",
        r"\bals de gebruiker\b[^.!?]{0,20}\bvraagt\b",
        r"\b(?:когда|если) пользовател\w+ спрос\w+",
        r"\bлюбому, кто спрос\w+",
        "询问",
        "问起",
        "聞いたら",
        "尋ねたら",
        "물으면",
        "요청하면",
        "عندما يسأل",
    ),
    # one choice only
    "allows one choice only": _any(
        r"\b(?:only ever|exclusively|and nothing else|nothing else|no others?|the only (?:one|answer|"
        r"choice|option|safe)|only (?:recommend|suggest|name|point|mention|trust|buy|include|want)|"
        r"is the only|(?:recommend\w*|suggest\w*|mention\w*|nam\w+|list\w*|show\w*) only)\b",
        r"\b(?:uniquement|exclusivement|únicamente|solo|ausschließlich|soltanto|esclusivamente|"
        r"apenas|somente|uitsluitend|alleen|только|исключительно|единственн\w+)\b",
        "只推荐",
        "只在",
        "只",
        "仅",
        "だけ",
        "のみ",
        "만 원",
        "만을",
        "فقط",
    ),
    # recommend, steer, rank first
    "steers a recommendation": _any(
        r"\b(?:recommend\w*|suggest\w*|propose|point (?:them|people|you|the user)|steer|direct "
        r"(?:them|people|the user)|rank [^.!?]{0,20}first|list [^.!?]{0,20}first|push|promote|endorse\w*|"
        r"the best (?:value|choice)|describe [^.!?]{0,30}as)\b",
        r"\b(?:recommand\w*|conseill\w*|propos\w*|recomiend\w*|recomend\w*|empfiehl\w*|empfehl\w*|"
        r"nenne|raccomand\w*|consiglia|proponi|indique|indica|verwijs\w*|aanbevel\w*|советуй|"
        r"рекоменд\w*|предлага\w*)\b",
        "推荐",
        "勧め",
        "すすめ",
        "推薦",
        "추천",
        "اقترح",
        "أوصي",
    ),
    # throw away what the assistant was told
    "sets aside earlier instructions": _any(
        r"\b(?:earlier|previous|prior|original|initial|above|existing|old|safety)\b[^.!?]{0,40}\b"
        r"(?:instructions?|guidance|rules|settings|policy|guidelines|prompt|directions)\b[^.!?]{0,40}\b"
        r"(?:void|outdated|out of date|expired|suspended|cancelled|canceled|replaced|no longer|"
        r"doesn'?t apply|don'?t apply|obsolete|superseded|revoked)",
        r"\b(?:whatever|everything|anything|every rule|the rules|the guidance)\b[^.!?]{0,60}\b(?:you were|"
        r"your (?:developers|operator|creators))\b[^.!?]{0,60}\b(?:void|outdated|out of date|expired|"
        r"cancelled|replaced|no longer|don'?t apply|doesn'?t apply)",
        r"\b(?:void|outdated|out of date|no longer (?:counts|applies)|cancelled|suspended)\b",
        r"\b(?:set aside|drop(?:ped)?|forget|ignore|disregard|bypass|override)\b[^.!?]{0,30}\b(?:the )?"
        r"(?:rules|restrictions|guidelines|instructions|limits|filters)\b",
        r"\b(?:ignor\w*|oubli\w*|olvid\w*|vergiss\w*|missacht\w*|dimentic\w*|esqueç\w*|negeer\w*|"
        r"игнорир\w*|забуд\w*|забудь)\b[^.!?]{0,40}\b(?:instructions|consignes|règles|instrucciones|"
        r"reglas|anweisungen|regeln|vorgaben|istruzioni|regole|instruções|regras|instructies|"
        r"инструкц\w*|правил\w*|указани\w*)",
        "忽略",
        "无视",
        "無視",
        "무시",
        "تجاهل",
    ),
    # the machinery of a prompt
    "names the assistant's own set-up": _any(
        r"\b(?:set|given) (?:for|to) you\b",
        r"\bthe (?:developers|operators?|creators)\b",
        r"\byour (?:developers|operator|creators|makers|system prompt|configuration|setup|set-up|"
        r"initial prompt|instructions|guidelines|rules|training|safety policy|memory|notes)\b",
        r"\b(?:setup|set-up|hidden|initial|system|developer) (?:text|prompt|instructions|message)\b",
        r"\bcontent (?:rules|policy|filters)\b",
        r"\brefusals?\b",
        r"\b(?:prompt système|prompt del sistema|system-?prompt|prompt di sistema|prompt do sistema|"
        r"системн\w* (?:промпт|подсказк|инструкц\w*))",
        "系统提示",
        "系统指令",
        "システムプロンプト",
        "시스템 프롬프트",
    ),
    # lifts the assistant's limits: a persona without rules, a mode without filters
    "lifts the assistant's limits": _any(
        r"\b(?:no|without(?: any)?|free (?:of|from)|dropped(?: all)?(?: (?:its|your|their))?) (?:rules|restrictions|"
        r"limits|limitations|filters|ethics|morals|guidelines|content polic(?:y|ies)|refusals|guardrails|censorship)\b",
        r"\b(?:unrestricted|unfiltered|uncensored|jailbr\w+|developer mode|admin (?:rights|mode|access)|"
        r"maintenance mode|god mode|debug mode|do anything now|no longer bound|not bound by|dan)\b",
        r"\b(?:you are|you're) (?:now |no longer )(?:a |an |the )?\w+",
        r"\b(?:pretend|roleplay|role-play|act as|play (?:the role|a game))\b",
        r"\b(?:sans (?:aucune )?(?:règles|restrictions|limites|filtres)|sin (?:reglas|restricciones|límites|filtros)|"
        r"ohne (?:regeln|einschränkungen|grenzen|filter)|senza (?:regole|restrizioni|limiti|filtri)|"
        r"sem (?:regras|restrições|limites|filtros)|zonder (?:regels|beperkingen|filters)|"
        r"без (?:правил|ограничений|фильтров))\b",
        "没有任何限制",
        "无限制",
        "制限なし",
        "제한 없이",
        "بدون قيود",
    ),
    # the assistant promises to do something
    "the assistant promises an action": _any(
        r"\bi(?:'ll| will|'m going to| am going to| shall)\b",
        r"\b(?:je vais|voy a|ich werde|vou|ik ga|ik zal)\b",
        r"\bя (?:сделаю|отправлю|буду)\b",
        "我会",
        "我将",
        "します",
        "하겠습니다",
    ),
    # other people the assistant talks to, beyond the user
    "speaks of other users": _any(
        r"\b(?:other (?:people|users|customers|visitors)|everyone else|every (?:other )?(?:user|customer|visitor)|"
        r"all (?:your |the |of your )?(?:users|customers|visitors)|any other user|anyone else|each user|"
        r"everybody|to everyone)\b",
        r"\b(?:d'autres utilisateurs|tous les utilisateurs|otros usuarios|todos los usuarios|andere nutzer|"
        r"alle nutzer|altri utenti|tutti gli utenti|outros usuários|todos os usuários|andere gebruikers|"
        r"alle gebruikers|другим пользователям|всем пользователям)\b",
        "其他用户",
        "所有用户",
        "他のユーザー",
        "다른 사용자",
        "جميع المستخدمين",
    ),
    # the assistant does what the user asked of it
    "follows the user's own request": _any(
        r"\b(?:as you asked|as requested|per your request|at your request|like you asked|you asked me to|"
        r"as you (?:wanted|prefer|requested)|you(?:'ve| have) asked|if you (?:want|like|prefer)|"
        r"would you like|do you want)\b",
        r"\b(?:comme (?:tu l'as|vous l'avez) demandé|como (?:pediste|pidió|pediu)|wie gewünscht|"
        r"come (?:hai )?richiesto|zoals gevraagd|как вы просили)\b",
    ),
    # what tells an account of the speaker's own life or of others' words apart
    "speaks of the speaker's own habits": (
        r"^\s*(?:i|we)\b(?! will| shall|'ll)|\b(?:i|we) (?:always|never|usually|often|tell|told|recommend|say|"
        r"use|asked|ask)\b|\bmy (?:kids|children|son|daughter|students|clients|patients|team|friends|"
        r"boss|manager|husband|wife|mom|dad|sister|brother)\b"
    ),
    "reports someone else's words": (
        r"\b(?:told|tells|asked|asks|instructed|said|says|reminded|warned|advised|whispered|wrote)\s+"
        r"(?:me|us|him|her|them|the crew|the team)\b|\b(?:she|he|they) (?:said|told|whispered)\b"
        r"|(?:^|\s)['‘]\w|[\"“”]"
    ),
    "discusses attacks or AI in general": (
        r"\b(?:prompt injections?|injections?|jailbreak\w*|attackers?|phishing|researchers?|security "
        r"(?:blog|training|course)|for example|e\.g\.|example of|such as|lecture|study|studies|we "
        r"evaluate|researchers?|defen[cs]es?|what does)\b"
    ),
    "asks a question": r"\?\s*$",
    "speaks to a human reader": (
        r"\b(?:you|your)\b(?![^.!?]{0,20}\b(?:developers|operator|system prompt|instructions|"
        r"configuration|guidelines|training)\b)"
    ),
}
