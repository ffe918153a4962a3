"""Prompt templates: how a class name becomes the sentence the text encoder reads.

The three templates compared in the paper's Table 1, selectable by name; any other string with a
``{}`` placeholder works too.
"""
from __future__ import annotations

PROMPT_TEMPLATES: dict[str, str] = {
    "ct": "A computerized tomography of a {}",
    "there-is": "There is {} in this computerized tomography",
    "photo": "A photo of a {}",
}
DEFAULT_TEMPLATE = "ct"
"""The paper's best template (Table 1)."""


def resolve_template(name_or_text: str) -> str:
    """The template text of a template name, or ``name_or_text`` itself if it holds a ``{}``."""
    if name_or_text in PROMPT_TEMPLATES:
        return PROMPT_TEMPLATES[name_or_text]
    if name_or_text.count("{}") != 1:
        raise ValueError(f"template {name_or_text!r} is neither one of {sorted(PROMPT_TEMPLATES)} "
                         "nor a text with one '{}' placeholder for the class name")
    return name_or_text


def prompts(template: str, class_names: list[str]) -> list[str]:
    """The sentence of every class name."""
    text = resolve_template(template)
    return [text.format(name) for name in class_names]
