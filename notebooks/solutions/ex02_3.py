import torch


def evaluate_properly(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = torch.cat([model(images[i:i + 1000]) for i in range(0, len(images), 1000)])
        return (logits.argmax(1) == labels).float().mean().item()
    finally:
        model.train(was_training)
