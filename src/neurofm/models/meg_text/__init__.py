"""MegToText: a LLaVA-style MEG-to-text decoder (``meg_text``).

After the "Large Brain-to-Text Model with MEG Encoder and LLaVA-Style Architecture" description
(MEG-MASC). A convolutional stem with strided temporal convolutions turns a MEG segment
(B, C, T) into tokens (one per ``prod(strides)`` samples), a transformer encoder with rotary
positions reads them, a residual vector quantizer (``vector_quantize_pytorch.ResidualVQ``:
commitment and codebook-usage losses, EMA codebooks with dead-code replacement) discretises
them, an MLP projects them into the embedding space of a LLaMA (``transformers``) adapted with
LoRA (``peft``), which reads ``[<s>, <meg>, MEG tokens, </meg>, text]``.

Deviations from the description:

- the masked-autoencoding pretraining zeroes the (standardised) signal patches of the masked
  tokens before the stem, so a masked token is the stem's response to silence (its biases act
  as a learned mask embedding, its edges see the neighbouring patches), and reconstructs the
  patches under them;
- ``llm_path`` loads any local causal LM (LLaMA-2 7B in the description); without it the LLM is
  a randomly initialised LLaMA of the configured size, whose word-level vocabulary is built from
  the training texts (:mod:`neurofm.tokenizers.text_vocab`);
- LoRA adapts the q/v projections; the embeddings and the output layer are trained in full by
  default (``lora_modules_to_save``) since the MEG span tokens are new;
- the encoder's positional encoding is rotary (relative positions inside its attention),
  which lets a masked token place itself relative to the visible ones.
"""

from neurofm.models.meg_text.config import MegTextConfig
from neurofm.models.meg_text.model import MegToText

__all__ = ["MegTextConfig", "MegToText"]
