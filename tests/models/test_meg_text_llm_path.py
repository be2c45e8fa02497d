"""``model.llm_path``: a local causal LM folder (weights + tokenizer) as the MEG-to-text decoder,
with ``<meg>`` / ``</meg>`` added to its tokenizer and embeddings (no hub access)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("vector_quantize_pytorch")


@pytest.fixture(scope="module")
def llm_folder(tmp_path_factory):
    from tokenizers.models import WordLevel
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from tokenizers import Tokenizer, pre_tokenizers

    folder = tmp_path_factory.mktemp("llm")
    words = ["<unk>", "<s>", "</s>", "the", "cat", "sat", "on", "mat"]
    backend = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(words),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        bos_token_id=1,
        eos_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def test_a_local_llm_and_its_tokenizer_make_the_decoder(llm_folder):
    from neurofm.generation.text import generate_text_ids
    from neurofm.registry import MODELS, create
    from neurofm.tokenizers.text_vocab import PretrainedText

    text = PretrainedText(llm_folder)
    assert text.vocab_size == 10 and {text.meg_start_id, text.meg_end_id} == {8, 9}
    assert text.decode(text.encode("the cat sat")) == "the cat sat"
    section = {"name": "meg_text", "preset": "tiny", "llm_path": str(llm_folder)}
    model = create(MODELS, {**section, "vocab_size": text.vocab_size}).eval()
    assert model.llm.get_input_embeddings().num_embeddings == text.vocab_size
    trainable = {n.split(".")[-3] for n, p in model.llm.named_parameters() if p.requires_grad}
    assert {"lora_A", "lora_B"} <= trainable
    ids = torch.tensor([text.encode("the cat sat") + [text.eos_id]])
    out = model(torch.randn(1, 4, 32), ids)
    assert out.logits.shape == (1, 4, 10) and torch.isfinite(out.logits).all()
    assert len(generate_text_ids(model, torch.randn(2, 4, 32), max_new_tokens=3, eos_id=-1)[0]) == 3
