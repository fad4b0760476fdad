def resume_all(checkpoint, make_model, make_optimizer, make_scheduler):
    model = make_model()
    optimizer = make_optimizer(model)
    scheduler = make_scheduler(optimizer)  # first: creating it sets the optimizer's lr to the schedule's start
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])  # brings back the lr the run had reached, and the momentum
    scheduler.load_state_dict(checkpoint["scheduler"])  # or the schedule starts again from step 0
    return model, optimizer, scheduler
