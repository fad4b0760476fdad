import torch


def predict(model, raw_images, metadata):
    model.eval()  # BatchNorm uses its running statistics, Dropout keeps everything
    x = raw_images.float() / 255
    x = (x - metadata["mean"]) / metadata["std"]  # the normalisation the model was trained with
    with torch.no_grad():
        return model(x).argmax(1)
