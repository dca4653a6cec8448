"""Exceptions whose message is meant for the user: the UI, API and CLI show it as is."""


class DetectorError(Exception):
    """Base class: a problem the user can fix, explained in one sentence."""


class ImageError(DetectorError):
    """An input file that cannot be scored (empty, corrupt, too large, not an image...)."""


class VideoError(DetectorError):
    """A video that cannot be scored (empty, truncated, audio only, too long, not a video...)."""


class DatasetError(DetectorError):
    """A dataset folder that does not have the expected layout or content."""


class BundleError(DetectorError):
    """A model bundle that is missing, incomplete, tampered with or unsafe."""


class HubError(DetectorError):
    """A Hugging Face Hub repo that cannot be reached, found or trusted."""
