from pathlib import Path

from safetensors import safe_open


def adapter_report(folder: Path) -> dict:
    with safe_open(Path(folder) / "adapter_model.safetensors", framework="pt") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}
    # B starts at zero and only training moves it: an adapter whose every lora_B is zero changes nothing
    trained = any(t.any().item() for key, t in tensors.items() if "lora_B" in key)
    embeddings = [t for key, t in tensors.items() if key.endswith("transformer.wte.weight")]
    return {"lora_trained": trained,
            "head": any(".score." in key for key in tensors),  # modules_to_save writes base_model.model.score.weight
            "vocab_size": embeddings[0].shape[0] if embeddings else None}
