"""The MEG-to-text model: MEG encoder -> residual VQ -> projector -> LLaMA with LoRA."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neurofm.layers.blocks import TransformerBlock
from neurofm.layers.norms import make_norm
from neurofm.layers.rvq import ResidualQuantizer
from neurofm.layers.stem import ConvStem
from neurofm.models.meg_text.config import MegTextConfig
from neurofm.registry import MODELS
from neurofm.tokenizers.text_vocab import SPECIAL_TOKENS
from neurofm.types import ModelOutput, ModelSpec

BOS_ID, EOS_ID, MEG_START_ID, MEG_END_ID = (SPECIAL_TOKENS.index(t) for t in SPECIAL_TOKENS[2:])


def build_llm(config: MegTextConfig) -> nn.Module:
    """The causal LM: pretrained weights from ``llm_path`` or a random LLaMA, with LoRA."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if config.llm_path is not None:
        from transformers import AutoModelForCausalLM

        llm = AutoModelForCausalLM.from_pretrained(config.llm_path, local_files_only=True)
        llm.resize_token_embeddings(config.vocab_size)
    else:
        llm = LlamaForCausalLM(
            LlamaConfig(
                vocab_size=config.vocab_size,
                hidden_size=config.llm_hidden,
                intermediate_size=config.llm_intermediate,
                num_hidden_layers=config.llm_layers,
                num_attention_heads=config.llm_heads,
                num_key_value_heads=config.llm_heads,
                max_position_embeddings=config.max_positions,
                bos_token_id=BOS_ID,
                eos_token_id=EOS_ID,
                pad_token_id=0,
                tie_word_embeddings=False,
            )
        )
    if config.llm_training == "full":
        return llm
    if config.llm_training == "frozen":
        llm.requires_grad_(False)
        return llm
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_targets),
        modules_to_save=list(config.lora_modules_to_save) or None,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(llm, lora)


@MODELS.register(
    "meg_text",
    config=MegTextConfig,
    spec=ModelSpec(inputs="signal_text", outputs="text", context=("text",)),
)
class MegToText(nn.Module):
    """MEG segment (B, C, T) + text ids (B, L) -> next-word logits (B, L, V).

    The LLM reads ``[<s>, <meg>, projected MEG tokens (N = T / patch), </meg>, text]`` as input
    embeddings; ``logits[:, i]`` is its prediction of ``text[:, i]`` from everything before it.
    """

    def __init__(self, config: MegTextConfig) -> None:
        super().__init__()
        self.config = config
        self.stem = ConvStem(config.n_chans, config.d_model, strides=config.strides)
        self.blocks = nn.ModuleList(
            TransformerBlock(config.d_model, config.n_heads, dropout=config.dropout, rotary=True)
            for _ in range(config.n_layers)
        )
        self.norm = make_norm("rms", config.d_model)
        self.reconstruct = nn.Linear(config.d_model, config.n_chans * config.patch)
        self.quantizer = ResidualQuantizer(
            config.d_model,
            n_quantizers=config.n_quantizers,
            codebook_size=config.codebook_size,
            codebook_dim=config.codebook_dim,
            commitment_weight=config.commitment_weight,
            entropy_weight=config.entropy_weight,
            dead_code_threshold=config.dead_code_threshold,
            decay=config.codebook_decay,
        )
        self.llm = build_llm(config)
        hidden = self.llm.get_input_embeddings().embedding_dim
        self.projector = nn.Sequential(
            nn.Linear(config.d_model, hidden), nn.GELU(), nn.Linear(hidden, hidden)
        )
        if config.distill_hidden is not None:  # hidden states -> a teacher's (distillation)
            self.distill_projection = nn.Linear(hidden, config.distill_hidden)

    # -- the MEG encoder ---------------------------------------------------------------------
    @staticmethod
    def standardise(x: Tensor) -> Tensor:
        """Each channel of each segment to zero mean and unit variance (MEG is in T: 1e-13)."""
        x = x.float()
        centred = x - x.mean(dim=-1, keepdim=True)
        return centred / centred.square().mean(dim=-1, keepdim=True).add(1e-30).sqrt()

    def encode(self, x: Tensor, *, mask: Tensor | None = None) -> Tensor:
        """Encoder features (B, N, d_model) of a signal (B, C, T).

        ``mask`` (B, N) bool: tokens whose signal patches are zeroed (masked autoencoding).
        """
        if x.ndim != 3 or x.shape[1] != self.config.n_chans or not x.is_floating_point():
            raise ValueError(
                f"meg_text: expected a float signal (B, {self.config.n_chans}, T), got "
                f"{tuple(x.shape)} {x.dtype}"
            )
        x = self.standardise(x)
        if mask is not None:  # zero the masked patches: their tokens keep the stem's bias
            keep = ~mask.repeat_interleave(self.config.patch, dim=1)  # (B, T)
            x = x * keep[:, None, :]
        h = self.stem(x)  # (B, N, D)
        for block in self.blocks:
            h = block(h, causal=False)
        return self.norm(h)

    def reconstruct_signal(self, h: Tensor) -> Tensor:
        """The signal (B, C, T) read back from encoder features (B, N, d_model)."""
        b, n, _ = h.shape
        patches = self.reconstruct(h).view(b, n, self.config.n_chans, self.config.patch)
        return patches.permute(0, 2, 1, 3).reshape(b, self.config.n_chans, n * self.config.patch)

    def meg_tokens(self, h: Tensor) -> tuple[Tensor, Tensor | None, dict[str, Tensor]]:
        """Quantized (or continuous) features -> LLM embeddings (B, N, hidden), codes, losses."""
        if not self.config.quantize:
            return self.projector(h), None, {}
        quantized, codes, losses = self.quantizer(h)
        return self.projector(quantized), codes, losses

    # -- the decoder -------------------------------------------------------------------------
    def embed_ids(self, ids: Tensor) -> Tensor:
        """LLM input embeddings of token ids."""
        return self.llm.get_input_embeddings()(ids)

    def prefix(self, meg: Tensor | None, batch_size: int, device: torch.device) -> Tensor:
        """``[<s>, <meg>, meg, </meg>]`` embeddings (B, N + 3, hidden), or ``[<s>]`` without MEG."""
        if meg is None:
            return self.embed_ids(torch.full((batch_size, 1), BOS_ID, device=device))
        ids = torch.tensor([BOS_ID, MEG_START_ID, MEG_END_ID], device=device)
        start, end = self.embed_ids(ids[:2]), self.embed_ids(ids[2:])
        b = meg.shape[0]
        return torch.cat([start.expand(b, -1, -1), meg, end.expand(b, -1, -1)], dim=1)

    def forward(
        self, x: Tensor, text: Tensor | None = None, *, use_meg: bool = True
    ) -> ModelOutput:
        """Teacher-forced next-word logits of ``text`` given the MEG segment ``x``.

        Parameters
        ----------
        x : Tensor, shape (B, C, T)
            MEG segments; ``T`` a multiple of ``config.patch``.
        text : Tensor, shape (B, L), int64, optional
            Text ids (no ``<s>``), right-padded. Without it only the encoder runs.
        use_meg : bool
            False drops the MEG span (the decoder alone: its text prior).

        Returns
        -------
        ModelOutput
            ``logits`` (B, L, V); ``prediction`` (B, C, T) the (standardised) signal read back
            from the encoder; ``aux_losses["rvq"]``; ``extras["codes"]`` (B, L_q, N) and
            ``extras["hidden"]`` (B, L, hidden) the LLM's last hidden states.
        """
        h = self.encode(x)
        prediction = self.reconstruct_signal(h)
        meg, codes, losses = self.meg_tokens(h)
        if text is None:
            return ModelOutput(prediction=prediction, aux_losses=losses, extras={"codes": codes})
        prefix = self.prefix(meg if use_meg else None, x.shape[0], x.device)
        embeds = torch.cat([prefix, self.embed_ids(text[:, :-1])], dim=1)
        out = self.llm(inputs_embeds=embeds, output_hidden_states=True, use_cache=False)
        first = prefix.shape[1] - 1
        return ModelOutput(
            logits=out.logits[:, first:],
            prediction=prediction,
            aux_losses=losses,
            extras={"codes": codes, "hidden": out.hidden_states[-1][:, first:]},
        )
