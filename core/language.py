"""Tell which language a user writes in, and the fixed phrases the core says in it.

Only the reply frame (refusals, labels, hand-off offers) is localised here; answers
themselves come from the knowledge base and the model.
"""

from __future__ import annotations

import re

#: Chinese characters (CJK unified ideographs, extension A, compatibility ideographs).
CJK_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
#: A run of them: what jieba segments and what bigram matching works on.
CJK_RUN = re.compile(CJK_CHAR.pattern + "+")
_LETTER = re.compile(r"[A-Za-z]")

PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "refusal": "I don't know that from our help centre.",
        "offer_person": "Would you like me to connect you with a person from our support team?",
        "sources": "Sources",
        "quote_intro": "Here is what our help centre says",
        "empty": "Please type a question.",
        "too_long": "That message is too long for me ({length} characters; the limit is {limit}). Please shorten it.",
        "error": "Sorry, something went wrong while answering. Please try again in a moment.",
        "greeting": "Hi {name}! I answer questions from our help centre, with links to the articles I used.",
        "greeting_anonymous": "Hi! I answer questions from our help centre, with links to the articles I used.",
        "handoff": "I'll connect you with a person from our support team. They will reply here.",
        "handoff_unavailable": "Sorry, no one from our support team is available in this chat. You can reach us by e-mail or phone as listed on our help centre's contact page.",
        "agent_reply": "Reply from our support team ({name})",
        "forwarded": "Passed on to our support team. They will reply here.",
        "escalation_closed": "Our support team has closed this conversation. Ask me anything else any time.",
        "related": "Related articles",
        "feedback_thanks": "Thanks for your feedback!",
        "feedback_sorry": "Sorry this didn't help. Would you like to talk to a person?",
        "talk_to_person": "Talk to a person",
        "reset": "Done, I've forgotten our earlier conversation.",
        "busy": "I'm answering a lot of questions right now. Please ask again in a minute.",
        "slow_down": "You've asked several questions at once; I'll answer the ones I have first. Please send the ones I haven't answered again in a minute.",
        "unscoped": "Sorry, I can't answer questions here: this chat or workspace isn't set up for our help centre.",
        "smalltalk_greeting": "Hi! Ask me anything our help centre covers, and I'll answer with links to the articles.",
        "smalltalk_thanks": "You're welcome! Is there anything else I can help with?",
        "smalltalk_no": "All right. If there's anything else, just ask.",
        "smalltalk_yes": "Sure, what would you like to know?",
        "smalltalk_bye": "Goodbye! Come back any time.",
        "contact_intro": "You can reach our support team directly:",
        "image_alt": "Picture from “{title}”",
        "image_alt_sources": "Picture from the sources of this answer",
    },
    "zh": {
        "refusal": "抱歉，帮助中心里没有找到这个问题的答案。",
        "offer_person": "需要为您转接人工客服吗？",
        "sources": "来源",
        "quote_intro": "帮助中心的相关说明",
        "empty": "请输入您的问题。",
        "too_long": "消息太长了（{length} 个字符，上限 {limit}），请精简后再发。",
        "error": "抱歉，回答时出了点问题，请稍后再试。",
        "greeting": "{name}，您好！我可以根据帮助中心的文章回答您的问题，并附上所引用文章的链接。",
        "greeting_anonymous": "您好！我可以根据帮助中心的文章回答您的问题，并附上所引用文章的链接。",
        "handoff": "正在为您转接人工客服，客服人员会在这里回复您。",
        "handoff_unavailable": "抱歉，此聊天暂时没有人工客服。您可以通过帮助中心“联系我们”页面上的邮箱或电话联系我们。",
        "agent_reply": "人工客服回复（{name}）",
        "forwarded": "已转给人工客服，客服人员会在这里回复您。",
        "escalation_closed": "客服已结束本次对话。如有其他问题，随时问我。",
        "related": "相关文章",
        "feedback_thanks": "感谢您的反馈！",
        "feedback_sorry": "抱歉没能帮到您。需要转人工客服吗？",
        "talk_to_person": "转人工客服",
        "reset": "好的，之前的对话已清除。",
        "busy": "我现在正在回答很多问题，请一分钟后再问。",
        "slow_down": "您一次问了好几个问题，我先回答已收到的。请一分钟后再发送我没有回答的问题。",
        "unscoped": "抱歉，我无法在这里回答问题：此聊天或工作区尚未开通帮助中心服务。",
        "smalltalk_greeting": "您好！帮助中心里有的问题都可以问我，我会附上相关文章的链接。",
        "smalltalk_thanks": "不客气！还有什么可以帮您的吗？",
        "smalltalk_no": "好的。如果还有其他问题，随时问我。",
        "smalltalk_yes": "好的，您想了解什么？",
        "smalltalk_bye": "再见！欢迎随时回来。",
        "contact_intro": "您可以直接联系我们的客服团队：",
        "image_alt": "图片来自“{title}”",
        "image_alt_sources": "图片来自本回答引用的文章",
    },
}


def detect_language(text: str) -> str:
    """``zh`` when Chinese characters dominate the letters, else ``en``."""
    cjk = len(CJK_CHAR.findall(text))
    latin = len(_LETTER.findall(text))
    return "zh" if cjk and cjk * 3 >= latin else "en"


def phrase(key: str, language: str = "en", **values: object) -> str:
    table = PHRASES.get(language, PHRASES["en"])
    return table.get(key, PHRASES["en"][key]).format(**values)


_HUMAN_REQUEST = re.compile(
    r"^\s*(human|agent|person|operator|representative|real person|live agent)\s*[.!?]*\s*$"
    r"|\b(talk|speak|chat|connect|transfer)\b.{0,30}\b(human|person|agent|someone|representative|operator|staff)\b"
    r"|人工|转人工|真人",
    re.IGNORECASE,
)


def asks_for_person(text: str) -> bool:
    """The user wants a human ("agent", "talk to a person", "人工", "转人工")."""
    return bool(_HUMAN_REQUEST.search(text))


def is_cjk(text: str) -> bool:
    return bool(CJK_CHAR.search(text))
