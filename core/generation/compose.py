"""Composed answers: the passage sentences, list items or table rows that answer the question.

When generation is off (the default for the bundled 135M model, which states the right fact
less often than this does) or a draft fails the grounding check, the answer is composed from
the sources. It is not a quote of a passage's start: every unit of the retrieved passages is
scored against the question — by meaning, by the question's words (in the unit or its
headings), and by whether it holds what the question asks for (a duration for "how long", a
price for "how much", a phone number for "what's the number", steps for "how do I") — and
the best one to three units of one passage are returned in their original order, with the
heading that says where they apply when the unit alone does not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.retrieval.terms import mentions
from core.retrieval.units import Unit, passage_units
from core.generation.verification import _AMOUNT, _EMAIL, _NUMBER, _PHONE_NUMBER, _SHORTCUT, _URL, Embed, content_tokens
from core.language import is_cjk
from core.retrieval.index import ScoredPassage

MAX_UNITS = 3
RESTATES = 0.5  # a unit whose words are mostly the question's adds little
MAX_STEPS = 6
MAX_LIST = 10  # sentences of the list a lead-in introduces ("Common reasons:")
CLOSE = 0.1  # a second unit joins the first when it scores at least this close
PASSAGE_MARGIN = 0.15  # passages retrieval scored this close to the best are considered
FULL_COVERAGE = 0.99  # ... and those holding (nearly) every word of the question
CLOSE_NEIGHBOUR = 0.15  # the sentence next to the best one joins it when this close
# A sentence of another passage scoring this close to the best one is shown too, with its own
# citation: between two near-equal candidates, both, rather than a guess ("always show hidden files").
CLOSE_OTHER = 0.06
REPEATS = 0.85  # ... unless it means nearly the same as a chosen unit (embedder cosine)
MAX_REASONS = 8  # a bulleted list longer than this is not shown whole
INSTRUCTS = 0.15  # for "how do I" questions, an instruction beats a description of the feature
INTRODUCES = 0.15  # "You can change the volume for one application." introduces, it does not answer
LABELLED = 0.1  # a list item or row whose label ("Express:") names what the question asks about
OPPOSITE = 0.3  # "To turn Bluetooth on:" for "how do I turn Bluetooth off"

_KEY = re.compile(r"\b(Super|Ctrl|Alt|AltGr|Shift|Print|Esc|Tab|Enter|F\d{1,2})\b\s*\+|\+\s*(Super|Ctrl|Alt|Shift|Tab|Space|Print)\b")
_GOES_ON = re.compile(r"^(then|next|after that|afterwards|finally)\b", re.I)
_POINTS_BACK = re.compile(r"^(that|this|these|those|it|they|such|both|if not|if so|otherwise|in that case)\b|^(这|那|它|其)", re.I)
_PRICE = re.compile(r"[$€£¥]\s?\d|\d\s?(?:usd|eur|dollars?|元|美元)", re.I)
_TIME = re.compile(r"\b\d{1,2}(?::\d{2})?\s?(?:am|pm)\b|\b\d{1,2}:\d{2}\b|monday|friday|weekend|business day|点|周一|周五", re.I)

# What kind of fact a question asks for; each maps to a test on a unit's text.
_ASKS = [
    ("duration", re.compile(r"\bhow (long|soon|quickly|fast)\b|\bwhen will\b|\bhow many (days|hours|weeks|minutes)\b|多久|多长时间|几天|多少天|什么时候", re.I)),
    ("price", re.compile(r"\bhow much\b|\bcost|\bprice|\bfee\b|\bcharge|\bfree\b|\bpay\b.*\bshipping|\bamounts?\b|\bdenominations?\b|运费|多少钱|费用|价格|收费|面额", re.I)),
    ("count", re.compile(r"\bhow many\b|\bmax(imum)?\b|\blimit\b|\bat least\b|几个|几张|最多|多少个", re.I)),
    ("phone", re.compile(r"\bphone\b|\bcall\b|(?<!port )(?<!serial )(?<!model )(?<!version )(?<!pin )\bnumber\b(?!.*\border)|\btelephone\b|电话", re.I)),
    ("email", re.compile(r"\be-?mail (address|you)|\bemail\b.*\b(support|contact)|邮箱|电子邮件", re.I)),
    ("time", re.compile(r"\bhours\b|\bopen\b|\bwhat time\b|\bwhen (are|is) (you|the|support)\b|营业时间|几点|工作时间", re.I)),
    # "with the keyboard" asks for keys; "keyboard layout" or "an english keyboard" does not.
    ("shortcut", re.compile(r"\bshortcuts?\b|\b(with|using|from|by) (the )?keyboard\b|\b(key|keyboard) (combination|command|to press)s?\b|\bhotkey|快捷键", re.I)),
    ("location", re.compile(r"\bwhere\b.*\b(go|goes|gone|end up|saved?|stored?|kept|located|put)\b|\bwhere (is|are) (the|my|your)\b|\bwhere .*\bfind\b.*\b(file|folder|recording|screenshot|download)s?\b|保存在哪|存在哪", re.I)),
    ("requirement", re.compile(r"\brequirements?\b|\brules?\b|\brequired\b|\bhow (long|strong|short) (must|should|does|do)\b|要求|规则|规定", re.I)),
    ("carrier", re.compile(r"\bwho (delivers|ships|carries|brings)\b|\b(which|what) (carrier|courier|delivery (company|service)|shipping (company|carrier))\b|哪家快递|什么快递|谁送|承运", re.I)),
    ("refund", re.compile(r"\b(get|receive|have)\b.{0,40}\b(cost|costs|fee|fees|charge|charges|money|shipping)\b.{0,15}\bback\b|退还.{0,6}(运费|费用)|(运费|费用).{0,6}(退|退还)吗", re.I)),
    ("looks", re.compile(r"\blooks? like\b|\bwhat format\b|\bformat of\b|长什么样|格式", re.I)),
    ("steps", re.compile(r"^\s*(how (do|can|should) (i|we|you)|how to|steps)\b|怎么|如何|怎样", re.I)),
]


FACT_KINDS = {"duration", "price", "count", "phone", "email", "time", "shortcut", "location", "looks", "requirement", "carrier", "refund"}
_REFUNDED = re.compile(r"\brefund(ed|s|able)?\b|\breimburs|\bcredited\b|\bpaid back\b|退还|退款|退回", re.I)
_REQUIREMENT = re.compile(r"\bat least\b|\bmust\b|\bminimum\b|\bno (more|fewer|less) than\b|\bup to\b|\bonly\b|至少|必须|不少于|不超过|最多|仅", re.I)
# A named carrier: "ship with DHL", "delivered by UPS", "our carrier is Canada Post", "由 DHL".
_CARRIER_NAME = r"(?:[A-Z]{2,}\b|FedEx|Purolator|Hermes|Evri|[A-Z][a-z]+ (?:Post|Mail|Parcel|Logistics|Freight)\b)"
_CARRIER = re.compile(rf"\b(?i:ship|ships|shipped|deliver|delivers|delivered|sent|send|carried|handled) (?i:with|by|via|through)\s+{_CARRIER_NAME}"
                      rf"|\b(?i:carriers?|couriers?) (?i:is|are|:)\s*{_CARRIER_NAME}|由\s*[A-Z]{{2,}}")
_LOCATION = re.compile(r"\b(saved|stored|kept|placed|located|found|put) (in|into|at|on|under|to)\b|\b(refunded|returned|sent|added|credited|paid|issued) (back )?(to|into|onto)\b|\w\s+(goes|go) (back )?(in|into|to)\b|\b(is|are) (under|behind|on the (back|front)|next to|inside|printed on|shown (in|on|under))\b|^(?:under|in the) (?-i:[A-Z])[^,]{1,40},|\bfolder\b|\bdirectory\b|保存在|存放在|文件夹", re.I)
_LOOKS = re.compile(r"\bfor example\b|\b(an|the|this) example\b|\bexample of\b|\bconsists? of\b|\blooks? like\b|\bformat\b|\bstarts? with\b|\be\.g\.|例如|格式|开头", re.I)
# An instruction: an imperative ("Press Ctrl+Shift+U …"), possibly after its purpose ("To hide a file, rename it …").
_IMPERATIVE = (
    "open|click|double-click|right-click|press|select|choose|go|enter|type|set|switch|use|rename|tap|drag|"
    "find|check|contact|call|email|sign|log|visit|turn|change|add|remove|delete|install|run|follow|make|keep|"
    "move|hold|scroll|pick|start|stop|restart|wait|ask|send|include|save|copy|paste|disable|enable|connect|"
    "unplug|plug|insert|close|edit|search|look|return|print|write|fill|upload|download|reply|try|replace"
)
_PURPOSE = r"(?:to|if|when) [^,:]{3,80},\s*"  # "To hide a file, …", "If you're concerned …, …"
_INSTRUCTION = re.compile(rf"^(?:{_PURPOSE})?(?:then\s+|first,?\s+)?(?:{_IMPERATIVE})\b", re.I)
# An instruction with its purpose or condition ("To connect the user to a network domain, click
# Enterprise Login."): complete on its own, unlike an article's one-line summary ("Print on both sides …").
_PURPOSED = re.compile(rf"^{_PURPOSE}(?:then\s+)?(?:{_IMPERATIVE})\b", re.I)
# A problem report ("switch user is missing", "automatic login is greyed out", "printer keeps
# printing even after i cancelled"): what answers it is the cause or the condition ("… only appears
# if you have more than one user account", "If your account type is Standard, you cannot …", "If
# this does not cancel the print job, try …"), not the steps of the feature that misbehaves.
_TROUBLE = re.compile(
    r"\b(?:doesn'?t|dont|does not|do not|won'?t|wont|can'?t|cant|cannot|isn'?t|isnt|aren'?t|arent|not|never|no longer)"
    r" (?:\w+ )?(?:work|working|show|showing|shows|appear|appearing|respond|responding|connect|connecting|print|load|"
    r"open|start|turn|do anything|there|available|listed|visible|wake|resume|boot|charge|charging|pair|pairing|"
    r"sync|save|play|playing|detect|recogni[sz]e|stay|stop|unlock|change|update)\b"
    r"|\b(?:missing|greyed|grayed|disabled|broken|stuck|keeps|even after|even though|when i only|nothing happens|"
    r"stopped working|not working|won'?t let me|isn'?t letting|(?:does|do|did) nothing|has no effect|makes no difference)\b", re.I)
_CAUSE = re.compile(
    r"\bmay be\b|\bmight be\b|\bprobably\b|\bfaulty\b|\bdefective\b|\bonly (?:\w+ ){0,4}(?:if|when|after|once)\b|"
    r"\bunless\b|\brequires?\b|\bneeds? to be\b|\bmust (?:be|have)\b|\bnot available\b|\bcaused by\b|\bbecause\b|"
    r"\bcannot\b|\bcan'?t\b|\bif (?:this|that|it) (?:does not|doesn'?t|did not|fails|still|is not)\b|\bas a last resort\b|"
    r"\bmake sure\b|\bcould (?:have|be)\b", re.I)
EXPLAINS = 0.25  # for a problem report, a unit that states a cause or a condition
FEATURE_STEPS = 0.2  # ... and a step that only operates the feature ("Click the name of the network")
_TRIES = re.compile(r"^(?:try|check|make sure|ensure|verify|restart|reboot|unplug|replug|remove and)\b", re.I)
# "is automatic login a security risk", "do my downloads keep running when the screen is locked": a
# yes/no question is answered by a statement ("… they will be able to access your account"), not by
# the steps of the feature it names. ("can i …" is left out: it is as often "how do i …" in disguise.)
_YES_NO = re.compile(r"^\s*(?:is|are|was|were|does|do|did|will|would|should|has|have)\b"
                     r"|^\s*can (?:the|it|this|that|these|those|my|your|our|a|an)\b", re.I)  # "can the files app search …"
# ... or asked after what happened: "deleted some stuff with rm, is it in the trash somewhere",
# "if i change the time zone do i have to fix the clock myself"
_YES_NO_AFTER = re.compile(r"(?:,|\s)\s*(?:is|are|does|do|can|will|should)\s+(?:i|it|they|that|this|these)\b", re.I)
# "which tab in Tweaks has the lid setting", "what key switches it to video": the noun asked for
# must be in the answer ("Select the General tab."), more than any other word of the question.
_ASKED_NOUN = re.compile(r"\b(?:which|what)\s+(?:kind of |type of |sort of )?([a-z]{3,})\b", re.I)
_NOT_A_NOUN = frozenset(
    """is are was were do does did can could will would should shall may might must has have had happens happened
    happen the and you your yours our its his her their this that these those about else time when where""".split())
ASKED_NOUN = 0.15
NOT_AN_ANSWER = 0.5  # an instruction or step, for such a question: only where nothing else is there
# A step that states what follows from a condition ("If you have the Automatic Time Zone switch set to
# on, your time zone should update automatically if you have a working internet connection.") is a
# statement in a list, not an instruction: it may answer a yes/no question.
_STATES = re.compile(rf"^(?:if|when|once|after) [^,:]{{3,80}},(?!\s*(?:then|{_IMPERATIVE})\b)", re.I)
# "do i have to press esc first or can i just type", "quickest way to turn on large text without going
# into settings": the question asks for another way, which the text offers with "Alternatively, …".
_ANOTHER_WAY = re.compile(r"\bor (?:can|could|do|should) (?:i|we|you)\b|\bwithout (?:going|opening|using)\b|"
                          r"\b(?:quick|quicker|quickest|faster|fastest|easier|easiest|another|other|different|simpler)"
                          r" (?:way|method)\b|\binstead\b", re.I)
_ALTERNATIVE = re.compile(r"^(?:alternatively|you can also|or you can|another way)\b", re.I)
ALTERNATIVE = 0.2
_CAPABILITY = re.compile(r"^(you can|you may|you are able to|it is possible to|it's possible to)\b|\bgives you the ability to\b|\blets you\b|\ballows you to\b", re.I)
# Opposite actions that embeddings barely tell apart: "turn Bluetooth off" is not answered by the
# steps "To turn Bluetooth on:". Each word is the key of its opposite.
_SWITCHED = re.compile(r"\b(?:turn|switch|set|toggle)\b[^.:;]{0,30}?\b(on|off)\b|\b(on|off)\b", re.I)
_OPPOSITES = {"on": "off", "off": "on", "enable": "disable", "disable": "enable", "show": "hide", "hide": "show",
              "unhide": "hide", "lock": "unlock", "unlock": "lock", "mute": "unmute", "unmute": "mute",
              "connect": "disconnect", "disconnect": "connect", "install": "uninstall", "uninstall": "install"}
_ACTION = re.compile(r"\b(enabl|disabl|show|hid|unhid|lock|unlock|mut|unmut|connect|disconnect|install|uninstall)(?:e|es|ed|ing|s|d)?\b", re.I)
_ACTION_BASE = {"enabl": "enable", "disabl": "disable", "hid": "hide", "unhid": "unhide", "mut": "mute", "unmut": "unmute"}


def _actions(text: str, switches_only: bool = True) -> set[str]:
    """The on/off-style actions a text names ("turn … off", "disabled", "unlock")."""
    found = {_ACTION_BASE.get(m.group(1).lower(), m.group(1).lower()) for m in _ACTION.finditer(text)}
    for m in _SWITCHED.finditer(text):
        word = m.group(1) or (None if switches_only else m.group(2))
        if word:
            found.add(word.lower())
    return found


def opposes(question: str, text: str) -> bool:
    """The text is about the opposite action of the question's ("on" for "off"), not also its own."""
    asked = _actions(question, switches_only=False)
    said = _actions(text)
    return any(_OPPOSITES.get(a) in said and a not in said for a in asked)


_LABEL = re.compile(r"^([^:：]{2,40})[:：]\s*\S")
_META = re.compile(r"^(learn|find out|read|discover|see) (how|about|what|why|when|which|where)\b|^this (article|page|guide|section|topic) (explains|describes|shows|covers|tells)\b", re.I)
_NOT_HOW_TO = re.compile(
    r"^\s*(what|which|who|whom|whose|why|when|where|is|are|was|were|do|does|did|can|could|will|would|should|"
    r"may|might|has|have|had|am|any|much|many)\b", re.I)


# Where to do something is how to get there: the steps name the panel ("where do i enter the proxy
# address"); where a thing is kept ("where do i find my screenshots") is a place, asked as a fact.
_WHERE_TO = re.compile(r"\bwhere (?:do|can|could|would|should|shall) (?:i|we|you) (?:go to |need to |have to )?"
                       r"(?!find\b|see\b|get\b|look\b|put\b|save\b|keep\b|store\b|download\b)[a-z]{2,}\b", re.I)
# "what do i need to change in the print window": what to do is how to do it.
_WHAT_TO_DO = re.compile(r"\bwhat (?:do|should|must|would) (?:i|we) (?:need to |have to )?"
                         r"(?:do|change|set|select|click|press|choose|pick|enable|adjust|turn)\b", re.I)
# "is there a way to only accept a key if i hold it down": a how-to question in yes/no clothes.
_IS_THERE_A_WAY = re.compile(r"^\s*(?:is there|are there|any) (?:a |an |any |some )?(?:way|option|setting)s? (?:to|for|of)\b", re.I)
_ASKS_WHAT = re.compile(r"\b(what|which|who|whom|whose|why|when|where|how (much|many|long|soon|often|old))\b", re.I)


def is_how_to(question: str) -> bool:
    """Asks how to do something: "how do I …", "cancel a print job", "my screen turns off too fast"."""
    if is_cjk(question):
        return bool(re.search(r"怎么|如何|怎样|步骤", question))
    if re.match(rf"^\s*(?:please\s+)?(?:{_IMPERATIVE})\b", question, re.I):
        return True  # "stop laptop from sleeping when i close the lid", "change volume for one app"
    if re.match(r"^\s*how\b", question, re.I):
        return not re.match(r"^\s*how (much|many|long|soon|often|old|far|fast|quickly|big|large)\b", question, re.I)
    if _WHERE_TO.search(question) or _IS_THERE_A_WAY.match(question) or _WHAT_TO_DO.search(question):
        return True  # "where do i swap the mouse buttons", "is there a way to email a file from Files"
    return not _NOT_HOW_TO.match(question) and not _ASKS_WHAT.search(question) and not _asks_yes_no_after(question)


def _asks_yes_no_after(question: str) -> bool:
    """A yes/no question after a statement ("deleted some stuff with rm, is it in the trash"); not
    "where do i …" or "… but how do i cancel it", which ask for a place or a way."""
    return bool(_YES_NO_AFTER.search(question)) and not _ASKS_WHAT.search(question) and not re.search(r"\bhow\b", question, re.I)


def is_trouble(question: str) -> bool:
    """Reports something that does not work as expected (English; see _TROUBLE)."""
    return bool(_TROUBLE.search(question))


def asked_facts(question: str) -> set[str]:
    asks = {name for name, pattern in _ASKS if pattern.search(question)}
    if "refund" in asks:
        asks.discard("price")  # "do I get the shipping cost back": whether it is refunded, not what it costs
    return asks


def _holds(kind: str, text: str) -> bool:
    if kind == "duration":
        return bool(_AMOUNT.search(text))
    if kind == "price":
        return bool(_PRICE.search(text)) or "free" in text.lower() or "免" in text
    if kind == "count":
        return bool(_NUMBER.search(text))
    if kind == "phone":
        return bool(_PHONE_NUMBER.search(text))
    if kind == "email":
        return bool(_EMAIL.search(text) or _URL.search(text))
    if kind == "time":
        return bool(_TIME.search(text))
    if kind == "shortcut":
        return bool(_SHORTCUT.search(text) or _KEY.search(text))
    if kind == "location":
        return bool(_LOCATION.search(text))
    if kind == "looks":
        return bool(_LOOKS.search(text))
    if kind == "requirement":
        return bool(_REQUIREMENT.search(text))
    if kind == "carrier":
        return bool(_CARRIER.search(text))
    if kind == "refund":
        return bool(_REFUNDED.search(text))
    return False


@dataclass(frozen=True, slots=True)
class Composition:
    """The chosen units and the hit they come from (their citation).

    ``also`` holds what another passage adds when it answered about as well (shown after the
    main part, cited on its own); empty for most answers.
    """

    hit: ScoredPassage
    units: tuple[Unit, ...]
    text: str
    also: tuple["Composition", ...] = ()


def _render(units: Sequence[Unit], question_tokens: set[str], steps: bool = False) -> str:
    """Sentences of a paragraph run on; list items, steps and table rows keep their lines."""
    parts: list[str] = []
    heading = units[0].context.split(" > ")[-1] if " > " in units[0].context else ""
    # The heading says where a list item or row applies ("Canada and European Union") when the
    # item does not; it is shown once, before the units, only when it carries the question's words.
    head_tokens = set(content_tokens(heading)) & question_tokens
    body_tokens = set().union(*(set(content_tokens(u.text)) for u in units)) & question_tokens
    # A heading that is itself a question ("Didn't get the email?") introduces, it does not qualify.
    lead = heading if heading and head_tokens - body_tokens and not heading.rstrip().endswith(("?", "？")) else ""
    listed = 0
    # A lone step or item among sentences ("If you have the Automatic Time Zone switch set to on, …")
    # is not numbered: "1." promises a list.
    listed_units = len({u.line for u in units if u.kind in ("item", "step", "row")})
    previous: Unit | None = None
    for unit in units:
        space = "" if is_cjk(unit.text) else " "
        if unit.kind in ("item", "step", "row") and previous is not None and previous.kind == unit.kind \
                and previous.line == unit.line:
            parts.append(space + unit.text)  # the next sentence of the same list item
        elif unit.kind in ("item", "step", "row"):
            listed += 1
            marker = (f"{listed}. " if steps else "- ") if listed_units > 1 else ""
            parts.append(("\n" if parts else "") + marker + unit.text)
        elif previous is not None and previous.kind != "sentence":
            parts.append("\n" + unit.text)  # a sentence after a list is a paragraph of its own
        else:
            parts.append(("" if not parts else space) + unit.text)
        previous = unit
    body = "".join(parts)
    if lead:
        separator = "：" if is_cjk(lead) else ":"
        body = f"{lead}{separator}\n{body}" if "\n" in body else f"{lead}{separator} {body}"
    return body


def _lines(own: Sequence[Unit], block: int) -> int:
    """How many list items (lines) a block has: an item of two sentences is one."""
    return len({u.line for u in own if u.block == block})


def _step_list(own: Sequence[Unit], block: int, limit: int | None = MAX_STEPS) -> tuple[Unit | None, list[Unit]]:
    """A numbered list's lead-in ("To turn Bluetooth off:"), if it has one, and its first ``limit`` steps."""
    steps = [u for u in own if u.kind == "step" and u.block == block][:limit]
    return _lead_in(own, steps[0]), steps


def _antecedent(own: Sequence[Unit], unit: Unit) -> Unit | None:
    """The unit before ``unit`` when ``unit`` points back to it ("That includes …")."""
    return own[unit.position - 1] if _POINTS_BACK.match(unit.text) and unit.position > 0 else None


def _lead_in(own: Sequence[Unit], first_item: Unit) -> Unit | None:
    """The sentence that introduces a list ("To turn Bluetooth off:"), if the list has one."""
    if first_item.position == 0:
        return None
    lead = own[first_item.position - 1]
    return lead if lead.kind == "sentence" and lead.text.rstrip().endswith((":", "：")) else None


class Composer:
    """Chooses and renders the units that answer a question (the search query, follow-ups rewritten)."""

    def __init__(self, embed: Embed | None = None) -> None:
        self.embed = embed

    def compose(self, query: str, hits: Sequence[ScoredPassage]) -> Composition:
        """The best units of the best-suited passage among ``hits`` (best first)."""
        top = hits[0].score
        candidates = [h for h in hits if h.score >= top - PASSAGE_MARGIN] or list(hits[:1])
        # A passage that holds every word of the question ("Ordering by phone" for "can I place an
        # order by phone") is a candidate even when its meaning scored lower.
        candidates += [h for h in hits if h not in candidates and (h.lexical or 0.0) >= FULL_COVERAGE]
        # So is a passage of a candidate article that holds more of the question's words than any
        # candidate ("A powered off computer also uses less energy than one which is suspended.").
        most_words = max((h.lexical or 0.0) for h in candidates)
        articles = {h.passage.doc_id for h in candidates}
        candidates += [h for h in hits if h not in candidates and h.passage.doc_id in articles and (h.lexical or 0.0) > most_words]
        if is_cjk(query):
            # Scored by word coverage alone, one section of the best article can trail another by far
            # ("加急配送" under US shipping vs the EU section that says it has none): the whole article counts.
            candidates += [h for h in hits if h.passage.doc_id == hits[0].passage.doc_id and h not in candidates]
        units = [u for i, h in enumerate(candidates) for u in passage_units(h.passage, i)]
        # "Learn how often you should back up …" is about the article; it never answers.
        units = [u for u in units if not _META.match(u.text)] or units
        if not units:
            passage = candidates[0].passage
            return Composition(candidates[0], (), " ".join(passage.text.split()))
        asks = asked_facts(query)
        q_tokens = set(content_tokens(query))
        scores = self._scores(query, q_tokens, asks, units, candidates)
        order = sorted(range(len(units)), key=lambda i: -scores[i])
        first = units[order[0]]
        chosen = [first]
        same = [i for i in order[1:] if units[i].passage == first.passage]
        own = [u for u in units if u.passage == first.passage]
        score_of = {(u.passage, u.position): scores[i] for i, u in enumerate(units)}
        steps_here = [u for u in own if u.kind == "step" and u.context == first.context]
        how_to = "steps" in asks or is_how_to(query)
        facts_asked = bool(asks & FACT_KINDS)
        # A sentence that already instructs ("To connect the user to a network domain, click Enterprise
        # Login.") or explains a reported problem is the answer; the section's steps are not.
        answers_alone = first.kind == "sentence" and not first.text.rstrip().endswith((":", "：")) and (
            bool(_PURPOSED.match(first.text)) or (is_trouble(query) and bool(_CAUSE.search(first.text)))
            or (bool(_ANOTHER_WAY.search(query)) and bool(_ALTERNATIVE.match(first.text))))
        # A problem report is answered by the steps only when they are what scored best: the steps
        # of the feature that misbehaves ("To turn Bluetooth on: …") are not why it misbehaves.
        trouble_sentence = is_trouble(query) and first.kind == "sentence"
        if (first.kind == "step" and how_to) or (is_how_to(query) and steps_here and not facts_asked and not answers_alone
                                                 and not trouble_sentence):
            # "change volume for one app": the steps of the section, not its introduction; of several
            # step lists ("To turn Bluetooth on:" … "To turn Bluetooth off:"), the one whose steps or
            # lead-in match the question best.
            def block_score(number: int) -> float:
                lead, block = _step_list(own, number, None)
                best = max(score_of[(u.passage, u.position)] for u in block + ([lead] if lead else []))
                return best - (OPPOSITE if lead is not None and opposes(query, lead.text) else 0.0)

            number = max(dict.fromkeys(u.block for u in steps_here), key=block_score)
            lead, block = _step_list(own, number)
            chosen = ([lead] if lead is not None else []) + block if len(block) > 1 or lead is not None else [first]
        elif first.kind == "item" and not facts_asked and 1 < _lines(own, first.block) <= MAX_REASONS:
            items = [u for u in own if u.block == first.block]
            # "why was my card declined": the list of reasons is the answer, not two of its items.
            lead = _lead_in(own, items[0])
            chosen = ([lead] if lead is not None else []) + items
        else:
            for i in same:
                if len(chosen) == MAX_UNITS:
                    break
                # A sentence right beside the best one ("Buying a gift card isn't taxed." before "Sales
                # tax is charged on the items …") may trail it a little more than one further away.
                beside = units[i].block == first.block and abs(units[i].position - first.position) == 1
                if scores[i] < scores[order[0]] - (CLOSE_NEIGHBOUR if beside else CLOSE):
                    continue
                if self._adds(units[i], chosen):
                    chosen.append(units[i])
            # A unit that does not hold what was asked brings its neighbour that does.
            missing = [k for k in asks - {"steps"} if not any(_holds(k, u.full) for u in chosen)]
            if missing and len(chosen) < MAX_UNITS:
                for i in same:
                    if any(_holds(k, units[i].full) for k in missing) and units[i] not in chosen and abs(units[i].position - first.position) <= 2:
                        chosen.append(units[i])
                        break
            # The sentence next to it that states the same kind of fact belongs with it
            # ("Most items … 30 days. Electronics … 15 days.").
            facts = asks & {"duration", "price", "count"}
            for unit in [u for u in units if u.passage == first.passage and u.block == first.block]:
                if len(chosen) < MAX_UNITS and unit not in chosen and abs(unit.position - first.position) == 1 \
                        and any(_holds(k, unit.text) for k in facts) and self._adds(unit, chosen):
                    chosen.append(unit)
            # A step that joined the best unit ("Click Keyboard in the sidebar to open the panel.")
            # means nothing out of its list: the list comes whole, with its lead-in.
            # (A step that states what follows from a condition is whole by itself.)
            for number in dict.fromkeys(u.block for u in chosen if u.kind == "step" and u is not first
                                        and not _STATES.match(u.text)):
                lead, block = _step_list(own, number)
                chosen += [u for u in ([lead] if lead else []) + block if u not in chosen]
        chosen = self._complete(chosen, units, q_tokens, whole_lists=not facts_asked)
        chosen.sort(key=lambda u: u.position)
        steps = all(u.kind == "step" for u in chosen if u.kind != "sentence")
        also: tuple[Composition, ...] = ()
        if all(u.kind == "sentence" for u in chosen) and len(chosen) < MAX_UNITS:
            runner_up = self._runner_up(units, scores, order, chosen)
            # "That includes … Australia." brings the sentence it points back to, or it would read
            # as if it were about the first part.
            extra = self._with_antecedent(runner_up, units) if runner_up else []
            if extra and len(chosen) + len(extra) <= MAX_UNITS:
                also = (Composition(candidates[runner_up.passage], tuple(extra), _render(extra, q_tokens)),)
        return Composition(candidates[first.passage], tuple(chosen), _render(chosen, q_tokens, steps), also)

    def _runner_up(self, units: Sequence[Unit], scores: Sequence[float], order: Sequence[int],
                   chosen: Sequence[Unit]) -> Unit | None:
        """The best sentence of another passage, when it scored within CLOSE_OTHER of the best unit.

        Only a sentence that stands alone (not a lead-in to a list) and says something the chosen
        units do not, in words or in meaning; one at most, so the answer stays short.
        """
        best = scores[order[0]]
        for i in order[1:]:
            if scores[i] < best - CLOSE_OTHER:
                return None
            unit = units[i]
            if unit.passage == chosen[0].passage or unit.kind != "sentence" or unit.text.rstrip().endswith((":", "：")):
                continue
            if self._adds(unit, chosen) and not self._repeats(unit, chosen):
                return unit
        return None

    @staticmethod
    def _with_antecedent(unit: Unit, units: Sequence[Unit]) -> list[Unit]:
        """``unit``, after the sentence it points back to when it starts "That …", "These …"."""
        before = _antecedent([u for u in units if u.passage == unit.passage], unit)
        return [before, unit] if before is not None else [unit]

    def _repeats(self, unit: Unit, chosen: Sequence[Unit]) -> bool:
        """Whether ``unit`` says again what a chosen unit says in other words ("Shift+Print: Take a
        screenshot of the entire screen." after "Shift+Print: Capture the entire screen.")."""
        if self.embed is None:
            return False
        vectors = np.asarray(self.embed([unit.text, *(u.text for u in chosen)]), dtype=np.float32)
        return bool((vectors[1:] @ vectors[0]).max() >= REPEATS)

    @staticmethod
    def _complete(chosen: list[Unit], units: Sequence[Unit], q_tokens: set[str] = frozenset(),
                  whole_lists: bool = False) -> list[Unit]:
        """A unit that points back ("That includes …") brings the one before it; a lead-in
        ("We accept the following:") brings the list it introduces; an introduction that only
        echoes the question ("You can enter any Unicode character …") brings what follows it, and
        so does one that goes on in the next sentences ("Then, find the hidden file …", or the
        instructions after an instruction written as prose); with ``whole_lists`` (nothing specific
        asked), an item of a short list ("Common reasons:") brings the rest of it, since two reasons
        of four read as if they were all."""
        own = [u for u in units if u.passage == chosen[0].passage]
        last = max(chosen, key=lambda u: u.position)
        last_tokens = set(content_tokens(last.text))
        # (An instruction naming what to click is not an echo, however many of the question's words it uses.)
        echoes = bool(last_tokens) and len(last_tokens - q_tokens) / len(last_tokens) < RESTATES + 0.2 \
            and not (last.kind == "sentence" and _PURPOSED.match(last.text))
        if len(chosen) == 1 and echoes and last.kind != "step" and last.position + 1 < len(own) \
                and not last.text.rstrip().endswith((":", "：")):
            following = own[last.position + 1]
            if following.kind == "step":
                # "You can swap the left and right buttons …" goes on in steps: all of them, not the first.
                lead, block = _step_list(own, following.block)
                return [*chosen, *(u for u in ([lead] if lead else []) + block if u not in chosen)]
            chosen = [*chosen, following]
            last = chosen[-1]
        # A sentence goes on in the next ("… Then, find the hidden file and rename it …"), and an
        # instruction in prose ("To unhide a file, go to the folder …") in the instructions after it.
        instructs = last.kind == "sentence" and bool(_INSTRUCTION.match(last.text))
        while len(chosen) < MAX_UNITS and last.kind == "sentence" and last.position + 1 < len(own):
            following = own[last.position + 1]
            if following.block != last.block or following.kind != "sentence" or not (
                    _GOES_ON.match(following.text) or (instructs and _INSTRUCTION.match(following.text))):
                break
            chosen = [*chosen, following]
            last = following
        # Any chosen unit, and so on back ("It is sometimes called the system key." after "This key …"
        # after "… the Super key …").
        for _ in range(MAX_UNITS):
            missing = [b for u in chosen if (b := _antecedent(own, u)) is not None and b not in chosen]
            if not missing:
                break
            chosen = [*dict.fromkeys([*missing, *chosen])]
        for lead in [u for u in chosen if u.text.rstrip().endswith((":", "："))]:
            following = [u for u in own if u.position > lead.position]
            if following and following[0].kind in ("item", "step", "row"):
                block = [u for u in following if u.block == following[0].block][:MAX_LIST]
                chosen = [*chosen, *(u for u in block if u not in chosen)]
        if whole_lists:
            for block_number in dict.fromkeys(u.block for u in chosen if u.kind == "item"):
                items = [u for u in own if u.block == block_number]
                if _lines(own, block_number) <= MAX_REASONS:
                    lead = _lead_in(own, items[0])
                    chosen = [*chosen, *(u for u in ([lead] if lead else []) + items if u not in chosen)]
        return chosen

    @staticmethod
    def _adds(unit: Unit, chosen: Sequence[Unit]) -> bool:
        tokens = set(content_tokens(unit.text))
        for other in chosen:
            other_tokens = set(content_tokens(other.text))
            union = tokens | other_tokens
            if union and len(tokens & other_tokens) / len(union) > 0.6:
                return False
        return bool(tokens)

    def _scores(
        self, query: str, q_tokens: set[str], asks: set[str], units: list[Unit], hits: Sequence[ScoredPassage]
    ) -> list[float]:
        similarity = np.zeros(len(units), dtype=np.float32)
        if self.embed is not None and not is_cjk(query):
            vectors = np.asarray(self.embed([u.full for u in units]), dtype=np.float32)
            similarity = vectors @ np.asarray(self.embed([query]), dtype=np.float32)[0]
        top = hits[0].score
        how_to = is_how_to(query) and not asks & FACT_KINDS
        cjk = is_cjk(query)
        trouble = is_trouble(query)
        yes_no = bool(_YES_NO.match(query) or _asks_yes_no_after(query)) and not how_to and not trouble
        another_way = bool(_ANOTHER_WAY.search(query))
        noun = next((m.group(1).lower() for m in _ASKED_NOUN.finditer(query) if m.group(1).lower() not in _NOT_A_NOUN), None)
        doc_best: dict[str, float] = {}
        for hit in hits:
            doc_best[hit.passage.doc_id] = max(doc_best.get(hit.passage.doc_id, hit.score), hit.score)
        with_steps = {(u.passage, u.context) for u in units if u.kind == "step"}
        scores: list[float] = []
        for i, unit in enumerate(units):
            full_tokens = set(content_tokens(unit.full))
            own_tokens = set(content_tokens(unit.text))
            # What the unit says beyond the question and its own headings ("Check the amount of ink
            # or toner left in printer cartridges." under "How can I check my printer's ink levels?").
            new_share = len(own_tokens - q_tokens - set(content_tokens(unit.context))) / len(own_tokens) if own_tokens else 0.0
            overlap = len(q_tokens & full_tokens) / len(q_tokens) if q_tokens else 0.0
            own = len(q_tokens & own_tokens) / len(q_tokens) if q_tokens else 0.0
            score = float(similarity[i]) + 0.5 * overlap + 0.25 * own
            for kind in asks - {"steps"}:
                score += 0.25 if _holds(kind, unit.text) else (0.1 if _holds(kind, unit.full) else -0.2)
            if "steps" in asks and unit.kind in ("item", "step"):
                score += 0.1
            if len(own_tokens) < 3 and not _NUMBER.search(unit.text):
                score -= 0.15  # "To be accepted, an item must be:" says nothing alone
            if own_tokens and len(own_tokens - q_tokens) / len(own_tokens) < RESTATES:
                score -= 0.1  # "You can change the volume for one application." only echoes the question
            label = _LABEL.match(unit.text)
            if label and set(content_tokens(label.group(1))) & q_tokens:
                score += LABELLED  # "加急配送（Express）：… $14.99" is labelled with what was asked
            if opposes(query, unit.text) or (unit.kind != "sentence" and opposes(query, unit.context.split(" > ")[-1])):
                score -= OPPOSITE
            if how_to:
                if unit.kind == "step" or (_INSTRUCTION.match(unit.text) and new_share >= RESTATES):
                    score += INSTRUCTS
                elif _CAPABILITY.search(unit.text) and own >= 0.4 and (unit.passage, unit.context) not in with_steps:
                    # An introduction with no steps under it; one with steps leads to them (compose()).
                    score -= INTRODUCES
            if noun and mentions(noun, unit.text):
                score += ASKED_NOUN
            if another_way and _ALTERNATIVE.match(unit.text):
                score += ALTERNATIVE
            if trouble and unit.kind == "step" and not _CAUSE.search(unit.text) and not _TRIES.match(unit.text):
                score -= FEATURE_STEPS
            if trouble and _CAUSE.search(unit.text):
                score += EXPLAINS
            if yes_no and ((unit.kind == "step" and not _STATES.match(unit.text))
                           or (_INSTRUCTION.match(unit.text) and not _PURPOSED.match(unit.text))):
                score -= NOT_AN_ANSWER
            score += 0.5 * (doc_best[hits[unit.passage].passage.doc_id] - top if cjk else hits[unit.passage].score - top)
            scores.append(score)
        return scores
