"""Prompt templates shared by methods, so that compared methods read the same text."""

#: AutoRegEmbed's STS instruction (ends with U+201C, the left double quote); keep the characters.
STS_INSTRUCTION = "This sentence means in one word: \u201c"

#: The text followed by the instruction: AutoRegEmbed's template before its compression slots,
#: and the template the paper's InfoNCE baselines share with it.
INSTRUCTION_TEMPLATE = "{text}\n" + STS_INSTRUCTION

#: The documents of retrieval tasks in AutoRegEmbed's evaluation code (closing character U+201C);
#: queries and symmetric tasks read the STS template.
PASSAGE_TEMPLATE = 'Passage: "{text}". Use one word to represent the passage in a retrieval task. The word is: \u201c'
