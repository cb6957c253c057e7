"""The simulator answers evaluation-like prompts right with a probability by tier,
the same way every time for the same (model, prompt)."""

from __future__ import annotations

from providers.simulator.skills import accuracy, correct_now, skill_answer


def test_accuracy_follows_the_tier():
    assert accuracy("gpt-5.5") == accuracy("gemini-3.1-pro") == 0.95
    assert accuracy("claude-sonnet-4-6") == 0.8
    assert accuracy("gpt-4o-mini") == 0.55


def test_share_of_right_answers_tracks_the_tier_over_many_prompts():
    prompts = [f"Compute: {i} * 7 + {i % 13}. Reply with the number only." for i in range(400)]
    for model, low, high in (("gpt-5.5", 0.9, 0.99), ("claude-sonnet-4-6", 0.72, 0.88), ("gpt-4o-mini", 0.45, 0.65)):
        right = sum(skill_answer(model, p, None) == str(i * 7 + i % 13) for i, p in enumerate(prompts))
        assert low <= right / len(prompts) <= high, (model, right)
        assert right == sum(correct_now(model, p) for p in prompts)


def test_answers_are_fixed_per_model_and_prompt():
    prompt = "Classify the sentiment as one of: positive, negative, neutral.\nReview: I love it"
    assert {skill_answer("gpt-4o-mini", prompt, None) for _ in range(5)} == {skill_answer("gpt-4o-mini", prompt, None)}


def test_ordinary_prompts_are_left_to_the_usual_composer():
    assert skill_answer("gpt-5.5", "Tell me about the weather in Lisbon", None) is None
    assert skill_answer("gpt-5.5", "Summarise: 3 apples", None) is None
