def map_location_for(rank: int, local_rank: int, gpus: int):
    # The GPUs of a machine are numbered from 0 on every machine, as local_rank is; rank counts the whole job.
    # One device for every tensor (a string, not a dict): a dict maps only the locations it lists.
    if gpus == 0:
        return "cpu"
    return f"cuda:{local_rank}"
