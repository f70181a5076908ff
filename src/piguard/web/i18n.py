"""Portal and dashboard wording: Simplified Chinese first (the people served read it), English beside it."""

from __future__ import annotations

from piguard.rights.catalog import TYPE_NAMES

STRINGS: dict[str, tuple[str, str]] = {
    "title": ("个人信息权利申请", "Personal information requests"),
    "intro": (
        "您可以查阅、复制、更正、删除您的个人信息，撤回同意，关闭个性化推荐，注销账号或投诉。"
        "我们会向您的手机或邮箱发送验证码以确认是您本人；自验证之日起 15 个工作日内答复。",
        "You can see, copy, correct or delete your personal information, withdraw consent, turn off "
        "personalised recommendation, cancel your account or complain. We send a code to your phone or "
        "e-mail to confirm it is you, and answer within 15 working days of verification.",
    ),
    "type": ("申请类型", "Request"),
    "id_kind": ("身份标识", "Identify me by"),
    "phone": ("手机号", "Phone number"),
    "email": ("电子邮箱", "E-mail"),
    "resident_id": ("居民身份证号", "Resident ID number"),
    "id_value": ("号码 / 地址", "Number / address"),
    "contact": (
        "接收验证码的手机或邮箱（仅使用身份证号时填写）",
        "Phone or e-mail for the code (with an ID number only)",
    ),
    "contact_kind": ("接收方式", "Send the code by"),
    "field": ("更正项", "Field to correct"),
    "new_value": ("正确内容", "Correct value"),
    "category": ("投诉类别", "Complaint category"),
    "text": ("情况说明", "What happened"),
    "consent_id": ("同意编号（留空则撤回全部）", "Consent id (empty: withdraw all)"),
    "note": ("补充说明（可选）", "Note (optional)"),
    "submit": ("提交并获取验证码", "Submit and get a code"),
    "verify_title": ("输入验证码", "Enter the code"),
    "verify_intro": (
        "验证码已发送，10 分钟内有效。如果该号码或邮箱在我们这里有记录，您验证后即可看到结果。",
        "A code was sent; it expires in 10 minutes. Once verified you will see what we hold, if anything.",
    ),
    "code": ("验证码", "Code"),
    "verify": ("验证", "Verify"),
    "request": ("申请", "Request"),
    "status": ("状态", "Status"),
    "due": ("答复期限", "Answer due"),
    "outcome": ("处理结果", "Outcome"),
    "download_json": ("下载副本（JSON）", "Download a copy (JSON)"),
    "download_csv": ("下载副本（CSV）", "Download a copy (CSV)"),
    "held": ("我们持有的您的信息", "What we hold about you"),
    "nothing_held": ("未找到与您有关的信息。", "We found nothing about you."),
    "purposes": ("处理目的", "Purposes"),
    "recipients": ("接收方", "Recipients"),
    "sources": ("来源", "Sources"),
    "consents": ("同意记录", "Consents"),
    "routes": ("您还可以向以下监管渠道投诉、举报", "You can also complain to these regulators"),
    "refused": ("已拒绝，理由", "Refused, because"),
    "receipt": ("签名回执", "Signed receipt"),
    "my_requests": ("我的申请", "My requests"),
    "staff": ("工作人员", "Staff"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "name": ("用户名", "Name"),
    "password": ("密码", "Password"),
    "dashboard": ("申请处理台", "Requests dashboard"),
    "overdue": ("已逾期", "Overdue"),
    "due_soon": ("即将到期（3 个工作日内）", "Due within 3 working days"),
    "open": ("待处理", "Open"),
    "all": ("全部", "All"),
    "filter": ("筛选", "Filter"),
    "left": ("剩余工作日", "Working days left"),
    "stats": ("统计", "Statistics"),
    "complaints_by_category": ("投诉类别", "Complaints by category"),
    "reports": ("数据地图与合规检查报告", "Data map and check reports"),
    "approve": ("批准并执行", "Approve and carry out"),
    "refuse": ("拒绝", "Refuse"),
    "reason": ("拒绝理由", "Reason"),
    "answer": ("答复内容", "Answer"),
    "decide": ("处理", "Decide"),
    "details": ("申请内容", "Details"),
    "provisional": (
        "（暂定：该年度官方节假日安排尚未公布）",
        "(provisional: that year's official calendar is not out yet)",
    ),
    "back": ("返回", "Back"),
    "error": ("出错了", "Something went wrong"),
    "lang_other": ("English", "中文"),
}
# What a person reads on an error page, by HTTP status (the service's own message follows, in English).
ERRORS = {
    400: ("验证码不正确，请重新输入。", "The code is not right; try again."),
    401: ("请先完成验证（输入我们发送的验证码）或登录。", "Verify first (the code we sent) or log in."),
    403: (
        "表单已过期或来源不明，请刷新页面后重试。",
        "The form expired or came from elsewhere; reload and try again.",
    ),
    404: ("未找到该申请。", "No such request."),
    409: ("该申请当前状态下不能进行此操作。", "The request is not in a state that allows this."),
    410: ("验证码已过期，请重新提交申请。", "The code has expired; submit the request again."),
    413: ("提交的内容过大。", "What was sent is too large."),
    422: ("输入有误，请检查后重新提交。", "Something in the form is not valid; check it and try again."),
    429: ("尝试次数过多，请稍后再试。", "Too many attempts; try again later."),
    502: ("验证码发送失败，请稍后再试。", "The code could not be sent; try again later."),
    503: ("服务暂不可用。", "The service is not available right now."),
}
STATUS = {
    "awaiting_verification": ("待验证", "Awaiting verification"),
    "verified": ("已验证，处理中", "Verified, being handled"),
    "in_progress": ("执行中", "In progress"),
    "completed": ("已完成", "Completed"),
    "refused": ("已拒绝", "Refused"),
    "expired": ("已失效", "Expired"),
}


def error_text(status: int, lang: str) -> str:
    pair = ERRORS.get(status, ("出错了", "Something went wrong"))
    return pair[1 if lang == "en" else 0]


def texts(lang: str) -> dict[str, str]:
    i = 1 if lang == "en" else 0
    out = {k: v[i] for k, v in STRINGS.items()}
    out.update({f"type_{k}": v[i] for k, v in TYPE_NAMES.items()})
    out.update({f"status_{k}": v[i] for k, v in STATUS.items()})
    return out
