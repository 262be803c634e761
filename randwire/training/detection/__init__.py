"""The detection task (paper §5, its COCO table) in one place: COCO folders, checked and cleaned as COCO's
pipelines do (:mod:`.data`), the synthetic shapes set written as one (:mod:`.shapes`), COCO's own AP through
pycocotools' COCOeval and the detections file (:mod:`.metrics`), the LightningModule (:mod:`.module`) and
pictures of predictions (:mod:`.pictures`). The detector itself is the model library's
(:mod:`randwire.models.detection`)."""
