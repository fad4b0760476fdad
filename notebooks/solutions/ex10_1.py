import torch


def lora_parameter_count(model: torch.nn.Module, rank: int, target_modules: list[str]) -> int:
    count = 0
    for name, module in model.named_modules():
        if any(name.endswith(target) for target in target_modules):  # as peft matches a name: every block's
            rows, columns = module.weight.shape  # in x out for GPT-2's Conv1D, out x in for nn.Linear
            count += rank * (rows + columns)  # A is rank x in, B is out x rank
    return count
