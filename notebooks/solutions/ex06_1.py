def redo_steps(crash_step, every, steps_per_epoch):
    last_save = max(crash_step // every * every, crash_step // steps_per_epoch * steps_per_epoch)
    return crash_step - last_save
